"""The hub's registry state: leases, versions and change notifications."""
from __future__ import annotations

from fannode.hub.registry import RegistryState
from fannode.testing import wait_until


def info(id, services=('Greeting',), started=0.0):
    return {'id': id, 'endpoint': 'tcp://127.0.0.1:%d' % (1000 + len(id)), 'services': list(services),
            'started': started}


def state(**kw):
    sent = []
    return RegistryState(lambda peer, subject, body: sent.append((peer, subject, body)), **kw), sent


def test_lookup_lists_instances_of_a_service_oldest_first():
    s, _ = state()
    s.register(info('b', started=2))
    s.register(info('a', started=1))
    s.register(info('c', services=['Other']))
    assert [i['id'] for i in s.lookup('Greeting')] == ['a', 'b']
    assert sorted(s.services()) == ['Greeting', 'Other']


def test_watchers_are_told_of_every_change_with_a_new_version():
    s, sent = state()
    s.watch(b'peer', ['Greeting'])
    before = s.version('Greeting')
    s.register(info('a'))
    (peer, subject, body), = sent
    assert (peer, subject) == (b'peer', 'registry.changed')
    assert [i['id'] for i in body['instances']] == ['a'] and body['version'] != before
    s.unregister('a')
    assert sent[-1][2]['instances'] == []
    assert not s.unregister('a')  # twice is harmless and tells no one
    assert len(sent) == 2


def test_sync_returns_only_stale_services():
    s, _ = state()
    s.register(info('a'))
    current = s.version('Greeting')
    assert s.sync(b'p', {'Greeting': current}) == {}
    stale = s.sync(b'p', {'Greeting': 'old.1'})
    assert stale['Greeting']['version'] == current


def test_a_restarted_hub_never_repeats_a_version():
    first, _ = state()
    second, _ = state()
    assert first.version('Greeting') != second.version('Greeting')


def test_missed_heartbeats_expire_an_instance_and_heartbeats_keep_it():
    s, sent = state(instance_ttl=0.05)
    s.watch(b'peer', ['Greeting'])
    s.register(info('kept'))
    s.register(info('dropped'))

    def beat():
        assert s.heartbeat(['kept']) == []
        s.expire()
        return 'dropped' not in s.instances  # its lease ran out, so did the one of 'kept'

    wait_until(beat, 2, 'the silent instance to expire')
    assert [i['id'] for i in s.lookup('Greeting')] == ['kept']
    assert [i['id'] for i in sent[-1][2]['instances']] == ['kept']


def test_heartbeat_names_instances_the_hub_does_not_know():
    s, _ = state()
    s.register(info('a'))
    assert s.heartbeat(['a', 'ghost']) == ['ghost']


def test_watchers_that_stop_syncing_are_forgotten():
    s, sent = state(watch_ttl=0.01)
    s.watch(b'peer', ['Greeting'])

    def lapsed():
        s.expire()
        return not s.watchers

    wait_until(lapsed, 2, 'the watch to lapse')
    s.register(info('a'))
    assert sent == []
