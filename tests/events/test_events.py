"""Events end to end in one process: a hub with its journal, instances handling events.
What every backend's queues do (competing consumers, broadcast, patterns, retries, dead
letters, delays, bodies) is checked against each in tests/contracts/test_events_contract.py."""
from __future__ import annotations

import collections

import pytest

import fannode
from conftest import free_port
from fannode.runtime.container import ServiceContainer
from fannode.core.config import loads_config
from fannode.core.events import Event, check_pattern, matches
from fannode.exceptions import UsageError
from fannode.hub.server import Hub
from fannode.testing import wait_until

SEEN: list[tuple[str, str, object]] = []  # (handler, instance, value)


class Counter(fannode.Interface):
    @fannode.event('tick')
    def once(self, event):
        SEEN.append(('once', self.container.id, event['n']))

    @fannode.event('tick', broadcast=True)
    def everywhere(self, event):
        SEEN.append(('everywhere', self.container.id, event['n']))

    @fannode.rpc()
    def tick(self, n):
        self.emit('tick', {'n': n})


CONFIG = 'interfaces:\n  Counter:\n    class: test_events:Counter\n'


def wait_for(predicate, timeout=10.0, message='condition'):
    return wait_until(predicate, timeout, message)


def settled(hub):
    """Nothing ready, held unacked or delayed in any queue: no delivery is still to come."""
    return all(q['ready'] == q['unacked'] == q['delayed'] == 0 for q in hub.broker.stats().values())


@pytest.fixture
def hub(tmp_path):
    SEEN.clear()
    port = free_port()
    hubs = []

    def start():
        h = Hub(journal=str(tmp_path / 'journal.db'))
        h.bind('127.0.0.1', port)
        h.start()
        hubs.append(h)
        return h

    h = start()
    h.url = 'hub://127.0.0.1:%d' % port
    h.restart = start
    yield h
    for x in hubs:
        x.stop()


@pytest.fixture
def instances(hub):
    started = []

    def start(n):
        for _ in range(n):
            c = ServiceContainer(loads_config(CONFIG), hub.url, events=hub.url)
            c.start()
            started.append(c)
        return started[-n:]

    yield start
    for c in started:
        c.stop(timeout=1)


def test_each_event_is_handled_once_per_service_and_by_every_broadcast_handler(hub, instances):
    """How instances map @event handlers to queues; what a queue does is in tests/contracts."""
    a, b, c = instances(3)
    # every consumer in place first (the shared queue's three, one broadcast queue each):
    # else the first instance may take them all, and a broadcast queue not yet made misses some
    wait_for(lambda: sorted(q['consumers'] for q in hub.broker.stats().values()) == [1, 1, 1, 3],
             message='the consumers of the three instances')
    for n in range(300):
        a.emit('tick', {'n': n})
    wait_for(lambda: len([s for s in SEEN if s[0] == 'once']) >= 300
             and len([s for s in SEEN if s[0] == 'everywhere']) >= 900, message='every event handled')
    wait_for(lambda: settled(hub), message='every delivery acked')  # so the counts below are final
    once = [s for s in SEEN if s[0] == 'once']
    assert sorted(s[2] for s in once) == list(range(300))
    assert len({s[1] for s in once}) > 1  # spread over instances
    everywhere = collections.Counter(s[1] for s in SEEN if s[0] == 'everywhere')
    assert everywhere == {a.id: 300, b.id: 300, c.id: 300}


def test_events_queued_for_a_stopped_service_survive_a_hub_restart(hub, instances):
    a, = instances(1)
    a.stop(timeout=1)  # the durable queue stays, with nobody consuming
    emitter = ServiceContainer(loads_config(CONFIG), hub.url, events=hub.url)
    for n in range(50):
        emitter.emit('tick', {'n': n})
    assert emitter.events.flush(5)
    emitter.stop(timeout=1)  # never started: this only closes its connections
    hub.stop()
    hub.restart()
    instances(1)
    wait_for(lambda: len([s for s in SEEN if s[0] == 'once']) >= 50)
    assert sorted(s[2] for s in SEEN if s[0] == 'once') == list(range(50))


def test_the_trace_id_of_a_request_travels_with_its_events(instances):
    a, = instances(1)
    seen = []
    sub = a.events.subscribe('probe', ['tick'], seen.append, durable=False, exclusive=True)
    a.client.proxy('Counter').tick(n=1)
    wait_for(lambda: seen)
    assert seen[0].trace_id and seen[0]['n'] == 1 and seen[0].source == 'Counter'
    a.events.unsubscribe(sub)


@pytest.mark.parametrize('pattern, event_type, expected', [
    ('greeted', 'greeted', True), ('greeted', 'greeted.x', False), ('order.*', 'order.paid', True),
    ('order.*', 'order', False), ('order.*', 'order.paid.late', False), ('order.#', 'order', True),
    ('order.#', 'order.paid.late', True), ('#', 'anything.at.all', True), ('#.late', 'late', True),
    ('a.#.z', 'a.z', True), ('a.#.z', 'a.b.c.z', True), ('a.#.z', 'a.b.c', False),
])
def test_topic_patterns(pattern, event_type, expected):
    assert matches(pattern, event_type) is expected


@pytest.mark.parametrize('bad', ['', 'a..b', 'a.b*', 'a b', '.a'])
def test_bad_patterns_are_one_line_errors(bad):
    with pytest.raises(UsageError, match="bad event pattern"):
        check_pattern(bad)


def test_emitting_bad_input_is_refused(instances):
    a, = instances(1)
    with pytest.raises(UsageError, match="bad event type 'a.*'"):
        a.emit('a.*')
    with pytest.raises(UsageError, match='the body must be a mapping'):
        a.emit('tick', [1, 2])


def test_an_event_reads_like_its_body():
    e = Event.new('greeted', {'name': 'Joe'}, 'trace', 'Greeting')
    assert e['name'] == 'Joe' and dict(e) == {'name': 'Joe'} and e.type == 'greeted'
    assert len(e.id) == 32 and e.trace_id == 'trace' and e.source == 'Greeting' and e.attempt == 1


def test_fannode_emit_from_plain_code(hub, instances, monkeypatch):
    from fannode.events import default
    instances(1)
    monkeypatch.setenv('FANNODE_EVENTS', hub.url)
    default.set_events(None)
    try:
        fannode.emit('tick', {'n': 9})
        wait_for(lambda: [s[2] for s in SEEN if s[0] == 'once'] == [9])
    finally:
        default.get_events().close(1)
        default.set_events(None)


