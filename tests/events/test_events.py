"""Events end to end in one process: a hub with its journal, instances handling events."""
from __future__ import annotations

import collections
import time

import gevent
import pytest

import fannode
import fannode.events
from conftest import free_port
from fannode.runtime.container import ServiceContainer
from fannode.core.config import loads_config
from fannode.core.events import Event, check_pattern, matches
from fannode.exceptions import UsageError
from fannode.hub.server import Hub

SEEN: list[tuple[str, str, object]] = []  # (handler, instance, value)


class Counter(fannode.Interface):
    @fannode.event('tick')
    def once(self, event):
        SEEN.append(('once', self.container.id, event['n']))

    @fannode.event('tick', broadcast=True)
    def everywhere(self, event):
        SEEN.append(('everywhere', self.container.id, event['n']))

    @fannode.event('later')
    def later(self, event):
        SEEN.append(('later', self.container.id, time.monotonic()))

    @fannode.event('broken', retry=2)
    def broken(self, event):
        SEEN.append(('broken', self.container.id, event.attempt))
        raise ValueError('no')

    running = 0

    @fannode.event('in.order', sequential=True)
    def in_order(self, event):
        Counter.running += 1
        SEEN.append(('in_order', Counter.running, event['n']))
        gevent.sleep(0.001 * (event['n'] % 3))  # uneven work must not reorder anything
        Counter.running -= 1

    @fannode.rpc()
    def tick(self, n):
        self.emit('tick', {'n': n})


CONFIG = 'interfaces:\n  Counter:\n    class: test_events:Counter\n'


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        gevent.sleep(0.01)


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


def test_each_event_is_handled_once_per_service_and_by_every_broadcast_handler(instances):
    a, b, c = instances(3)
    for n in range(300):
        a.emit('tick', {'n': n})
    wait_for(lambda: len([s for s in SEEN if s[0] == 'once']) >= 300
             and len([s for s in SEEN if s[0] == 'everywhere']) >= 900)
    gevent.sleep(0.2)  # nothing more arrives
    once = [s for s in SEEN if s[0] == 'once']
    assert sorted(s[2] for s in once) == list(range(300))
    assert len({s[1] for s in once}) > 1  # spread over instances
    everywhere = collections.Counter(s[1] for s in SEEN if s[0] == 'everywhere')
    assert everywhere == {a.id: 300, b.id: 300, c.id: 300}


def test_a_failing_handler_is_retried_then_dead_lettered(hub, instances):
    a, = instances(1)
    a.emit('broken')
    wait_for(lambda: hub.journal.dead_letters())
    assert [s[2] for s in SEEN if s[0] == 'broken'] == [1, 2, 3]
    dead, = hub.journal.dead_letters()
    assert dead['queue'] == 'Counter.broken' and dead['attempts'] == 3
    assert dead['reason'] == 'ValueError: no'


def test_a_delayed_event_arrives_no_earlier_than_asked(instances):
    a, = instances(1)
    sent = time.monotonic()
    a.emit('later', delay=0.5)
    wait_for(lambda: any(s[0] == 'later' for s in SEEN))
    arrived = next(s[2] for s in SEEN if s[0] == 'later')
    assert arrived - sent >= 0.5


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


def test_the_local_backend_delivers_in_process(hub):
    """local:// needs no broker: handy for testing one service."""
    c = ServiceContainer(loads_config(CONFIG), hub.url, events='local://test-local')
    c.start()
    try:
        other = fannode.events.get_events('local://test-local')  # same URL, same broker
        other.emit(Event.new('tick', {'n': 5}, 't', 'test'))
        c.emit('later', delay=0.2)
        wait_for(lambda: [s[2] for s in SEEN if s[0] == 'once'] == [5] and any(s[0] == 'later' for s in SEEN))
        assert [s[2] for s in SEEN if s[0] == 'everywhere'] == [5]
    finally:
        c.stop(timeout=1)


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


def test_a_sequential_handler_takes_one_event_at_a_time_in_order(instances):
    a, = instances(1)
    for n in range(30):
        a.emit('in.order', {'n': n})
    wait_for(lambda: len([s for s in SEEN if s[0] == 'in_order']) == 30)
    seen = [s for s in SEEN if s[0] == 'in_order']
    assert [s[2] for s in seen] == list(range(30))
    assert {s[1] for s in seen} == {1}  # never two at once
