"""What every shared-config backend promises (fannode/sharedconfig/base.py), checked against
each: local://, hub:// and zookeeper://. `shared_config.make()` opens one more client of the
test's own namespace."""
from __future__ import annotations

import pytest

from fannode.exceptions import UsageError
from fannode.testing import wait_until

WAIT = 10.0  # a deadline only: every wait returns as soon as its condition holds


def test_get_set_delete_and_keys(shared_config):
    cfg = shared_config.make()
    assert cfg.get('greeting.style') is None and cfg.get('greeting.style', 'Hi') == 'Hi'
    assert cfg.keys() == []
    cfg.set('greeting.style', 'Hello')
    cfg.set('greeting.size', {'px': [12, 14]})
    cfg.set('limits.max', 3)
    cfg.set('greeting.style', 'Hello again')  # an existing key: replaced
    assert cfg.get('greeting.style', 'Hi') == 'Hello again'
    assert cfg.keys() == ['greeting.size', 'greeting.style', 'limits.max']  # sorted
    assert cfg.keys('greeting.') == ['greeting.size', 'greeting.style'] and cfg.keys('greeting.st') == ['greeting.style']
    assert cfg.keys('nothing') == []
    assert cfg.delete('greeting.size') is True and cfg.delete('greeting.size') is False
    assert cfg.get('greeting.size') is None and cfg.keys('greeting.') == ['greeting.style']


def test_every_client_reads_what_one_wrote_and_it_outlives_the_writer(shared_config):
    writer, reader = shared_config.make(), shared_config.make()
    writer.set('k', {'a': 1})
    assert reader.get('k') == {'a': 1} and reader.keys() == ['k']
    shared_config.close(writer)
    assert reader.get('k') == {'a': 1} and shared_config.make().get('k') == {'a': 1}


def test_values_come_back_as_json_gives_them(shared_config):
    writer, reader = shared_config.make(), shared_config.make()
    value = {'tuple': (1, 2), 'keys': {1: 'one'}, 'text': 'grüß', 'big': 2 ** 70, 'nested': [{'x': None}],
             'real': 2.5, 'flag': False}
    writer.set('k', value)
    want = {'tuple': [1, 2], 'keys': {'1': 'one'}, 'text': 'grüß', 'big': 2 ** 70, 'nested': [{'x': None}],
            'real': 2.5, 'flag': False}
    assert reader.get('k') == want and writer.get('k') == want
    for v in (1, 1.0, True):  # equal in Python, three values in JSON
        writer.set('n', v)
        assert type(reader.get('n')) is type(v)


def test_no_client_shares_an_object_with_the_store(shared_config):
    cfg = shared_config.make()
    value = {'a': [1]}
    cfg.set('k', value)
    value['a'].append(2)
    cfg.get('k')['a'].append(3)
    assert cfg.get('k') == {'a': [1]}


@pytest.mark.parametrize('key', ['', 'a b', 'a..b', '.a', 'a/b', '../etc', 'é', 'x' * 201, None, 3])
def test_bad_keys_are_refused_before_anything_is_stored(shared_config, key):
    cfg = shared_config.make()
    for call in (lambda: cfg.get(key), lambda: cfg.set(key, 1), lambda: cfg.delete(key),
                 lambda: cfg.subscribe(key, print)):
        with pytest.raises(UsageError, match='bad config key'):
            call()
    assert cfg.keys() == []


def test_values_that_are_not_json_are_refused(shared_config):
    cfg = shared_config.make()
    with pytest.raises(UsageError, match='cannot be null'):
        cfg.set('k', None)
    for bad in ({1, 2}, float('nan'), object()):
        with pytest.raises(UsageError, match='must be JSON-able'):
            cfg.set('k', bad)
    assert cfg.keys() == []


def test_subscribers_hear_once_of_each_change_and_of_nothing_else(shared_config):
    """Each change is waited for before the next: ZooKeeper's watches may fold changes made
    in quick succession into the last one."""
    writer, reader = shared_config.make(), shared_config.make()
    writer.set('k', 1)
    heard = []
    reader.subscribe('k', lambda key, value: heard.append((key, value)))
    reader.subscribe('absent', lambda key, value: heard.append((key, value)))
    reader.subscribe('marker', lambda key, value: heard.append((key, value)))

    def hears(*calls):
        # repr: 2 == 2.0 == True in Python, not in JSON
        return lambda: repr(heard) == repr(list(calls))

    def marked(n):
        """Change the marker and wait to hear it: what came before it was heard by then."""
        writer.set('marker', n)
        wait_until(lambda: heard[-1:] == [('marker', n)], WAIT, 'marker %d' % n)
        heard.pop()

    marked(1)
    assert heard == []  # the values when subscribed are no change
    writer.set('k', 2)
    wait_until(hears(('k', 2)), WAIT, 'the change')
    writer.set('k', 2)  # the same value again: no change
    marked(2)
    writer.set('k', 2.0)  # equal in Python, not in JSON: a change
    wait_until(hears(('k', 2), ('k', 2.0)), WAIT, 'the change to a float')
    writer.delete('k')
    wait_until(hears(('k', 2), ('k', 2.0), ('k', None)), WAIT, 'the deletion')
    writer.set('absent', 'here')  # a key that did not exist when subscribed
    wait_until(hears(('k', 2), ('k', 2.0), ('k', None), ('absent', 'here')), WAIT, 'the new key')
    writer.set('unwatched', 1)
    writer.set('absent', 'here')
    marked(3)
    assert hears(('k', 2), ('k', 2.0), ('k', None), ('absent', 'here'))()


def test_a_subscriber_hears_its_own_client_too(shared_config):
    cfg = shared_config.make()
    heard = []
    cfg.subscribe('k', lambda key, value: heard.append(value))
    cfg.set('k', 'mine')
    wait_until(lambda: heard == ['mine'], WAIT, 'the change made through the same client')


# -- unique ids ---------------------------------------------------------------------


def test_unique_ids_increase_per_client_and_no_two_clients_get_one(shared_config):
    import gevent
    clients = [shared_config.make() for _ in range(3)]
    drawn: dict[int, list[int]] = {}

    def draw(i, client):  # several greenlets of one client draw from its blocks together
        drawn.setdefault(i, []).extend(client.unique_id('orders') for _ in range(700))
    gevent.joinall([gevent.spawn(draw, i, c) for i, c in enumerate(clients) for _ in range(2)], raise_error=True)
    every = [n for ids in drawn.values() for n in ids]
    assert len(set(every)) == len(every) == 3 * 2 * 700
    assert all(ids == sorted(ids) for ids in drawn.values())  # increasing for each caller
    assert all(type(n) is int and n > 0 for n in every)
    other = clients[0].unique_id('invoices')  # each name counts on its own
    assert type(other) is int and other > 0


def test_unique_ids_are_not_handed_out_again_to_a_new_client(shared_config):
    shared_config.make()  # the cluster lives on (local:// forgets everything with its last client)
    first = shared_config.make()
    seen = {first.unique_id('orders') for _ in range(250)}
    shared_config.close(first)
    later = shared_config.make()
    assert not seen & {later.unique_id('orders') for _ in range(250)}


@pytest.mark.parametrize('name', ['', 'a b', 'a/b', None, 'x' * 201, ['orders']])
def test_a_bad_id_name_is_refused_in_one_line(shared_config, name):
    with pytest.raises(UsageError, match='bad id name'):
        shared_config.make().unique_id(name)
