"""The hub's shared config: state, journal, and the hub:// client against a hub in this
process (stopped and started again on the same port and journal for restarts)."""
from __future__ import annotations

import pytest
import zmq

from conftest import free_port
from fannode.exceptions import RegistryUnavailable
from fannode.hub.configstore import ConfigState
from fannode.hub.journal import SqliteJournal
from fannode.hub.server import Hub
from fannode.sharedconfig import get_shared_config
from fannode.sharedconfig.hub import newer
from fannode.testing import wait_until


def state(**kw):
    sent = []
    return ConfigState(lambda peer, subject, body: sent.append((peer, subject, body)), 'e1', **kw), sent


def test_watchers_are_told_of_each_change_with_a_new_version():
    s, sent = state()
    assert s.watch(b'peer', {'k': ''}) == {'k': {'key': 'k', 'version': s.version('k'), 'value': None}}
    before = s.version('k')
    s.set('k', 1)
    s.set('k', 1)  # no change: no notification
    s.set('other', 2)
    assert s.delete('k') and not s.delete('k')
    assert [(peer, subject, body['value']) for peer, subject, body in sent] == [
        (b'peer', 'config.changed', 1), (b'peer', 'config.changed', None)]
    assert before != sent[0][2]['version'] != sent[1][2]['version']
    assert s.keys() == ['other'] and s.keys('ot') == ['other'] and s.keys('k') == []


def test_values_equal_only_in_python_are_a_change():
    s, sent = state()
    s.watch(b'peer', {'flag': ''})
    s.set('flag', 1)
    s.set('flag', True)
    s.set('flag', [True])
    s.set('flag', [1])
    assert [body['value'] for _, _, body in sent] == [1, True, [True], [1]]
    assert s.values['flag'] == [1] and s.values['flag'][0] is not True


def test_watch_returns_only_stale_keys_and_lapses_unless_renewed():
    s, sent = state(watch_ttl=0.01)
    s.set('k', 1)
    current = s.version('k')
    assert s.watch(b'p', {'k': current}) == {}
    assert s.watch(b'p', {'k': 'old.1'})['k']['version'] == current

    def lapsed():
        s.expire()
        return not s.watchers

    wait_until(lapsed, 2, 'the watch to lapse')
    s.set('k', 2)
    assert sent == []


def test_the_journal_keeps_values_for_the_next_hub(tmp_path):
    journal = SqliteJournal(str(tmp_path / 'j.sqlite3'))
    s, _ = state(journal=journal)
    s.set('a', {'x': [1, 'two']})
    s.set('b', 1)
    s.delete('b')
    journal.close()
    again = SqliteJournal(str(tmp_path / 'j.sqlite3'))
    try:
        assert ConfigState(lambda *a: None, 'e2', again).values == {'a': {'x': [1, 'two']}}
    finally:
        again.close()


def test_versions_order_within_an_epoch_and_a_new_epoch_wins():
    assert newer('e.2', None)
    assert newer('e.10', 'e.9') and not newer('e.9', 'e.10') and not newer('e.3', 'e.3')
    assert newer('f.1', 'e.9')


class HubProcess:
    """A hub in this process that can be restarted on the same port and journal."""

    def __init__(self, journal=None):
        self.port = free_port()
        self.url = 'hub://127.0.0.1:%d' % self.port
        self.journal = journal
        self.hub = None
        self.start()

    def start(self):
        wait_until(self._bind, 5, 'the port to be free again')
        self.hub.start()

    def _bind(self):
        # ZeroMQ closes a socket in the background: the port of a stopped hub may take a moment.
        hub = Hub(journal=self.journal)
        try:
            hub.bind('127.0.0.1', self.port)
        except zmq.ZMQError:
            hub.stop()
            return False
        self.hub = hub
        return True

    def stop(self):
        self.hub.stop()


@pytest.fixture
def hub(tmp_path):
    h = HubProcess(str(tmp_path / 'hub.sqlite3'))
    yield h
    h.stop()


@pytest.fixture
def clients(hub):
    made = []

    def make():
        made.append(get_shared_config(hub.url))
        return made[-1]
    yield make
    for c in made:
        c.close()


def test_the_hub_refuses_a_bad_key_from_any_client(clients):
    cfg = clients()
    with pytest.raises(RegistryUnavailable, match='bad config key'):
        cfg.link.call('config_set', key='../etc', value=1)


def test_a_missed_notification_is_repaired_by_the_sync(clients, hub):
    writer, reader = clients(), clients()
    seen = []
    reader.subscribe('k', lambda key, value: seen.append(value))
    hub.hub.config.notify = lambda *args: None  # the hub's pushes get lost
    writer.set('k', 'late')
    wait_until(lambda: seen == ['late'], timeout=3, message='the sync to bring the value')


def test_values_and_subscriptions_survive_a_hub_restart(clients, hub):
    writer, reader = clients(), clients()
    writer.set('k', 'before')
    seen = []
    reader.subscribe('k', lambda key, value: seen.append(value))
    old_epoch = hub.hub.registry.epoch
    hub.stop()
    hub.start()
    epoch = hub.hub.registry.epoch

    def answers():
        try:
            return writer.get('k') == 'before'
        except RegistryUnavailable:  # not reconnected yet
            return False
    wait_until(answers, timeout=3, message='the restarted hub to answer with the value')
    # The reader's sync against the new epoch: the same value, so no callback.
    wait_until(lambda: reader.versions['k'].startswith(epoch + '.'), 5, "the reader's sync with the new hub")
    assert epoch != old_epoch and seen == []
    writer.set('k', 'after')
    wait_until(lambda: seen == ['after'], timeout=5, message='the change after the restart')


def test_unique_ids_are_never_handed_out_again_after_a_hub_restart(clients, hub):
    """The counter is on disk before a block is answered: a restarted hub goes on from it."""
    before = clients()
    drawn = [before.unique_id('orders') for _ in range(150)]  # two blocks of 100
    hub.stop()
    hub.start()
    after = clients()
    later = [after.unique_id('orders') for _ in range(150)]
    assert min(later) > max(drawn) and len(set(drawn + later)) == 300


def test_a_hub_without_a_journal_starts_its_ids_above_those_of_any_hub_before_it(tmp_path):
    hub = HubProcess(None)
    try:
        first = get_shared_config(hub.url)
        drawn = [first.unique_id('orders') for _ in range(10)]
        first.close()
        hub.stop()
        hub.start()
        again = get_shared_config(hub.url)
        assert again.unique_id('orders') > max(drawn)
        again.close()
    finally:
        hub.stop()


def test_the_hub_refuses_a_bad_id_block_request_in_one_line(clients):
    link = clients().link
    with pytest.raises(RegistryUnavailable, match='hub.ids: count: must be from 1 to 1000000, got 0'):
        link.call('ids', name='orders', count=0)
    with pytest.raises(RegistryUnavailable, match='bad config key'):
        link.call('ids', name='../x', count=1)
