"""Event ttl, on every backend (local://, hub://, amqp://): an event no handler has
started on within its ttl is dead-lettered with that reason, never run late; one handled
in time runs under a deadline of its expiry (fannode.time_left())."""
from __future__ import annotations

import uuid

import gevent

import fannode
from fannode.core.events import Event
from fannode.testing import wait_until

WAIT = 15.0  # a deadline only: every wait returns as soon as its condition holds


def new(type: str, body: dict | None = None, ttl: float | None = None) -> Event:
    return Event.new(type, body or {}, uuid.uuid4().hex, 'contract', ttl)


def test_an_event_delayed_past_its_ttl_is_dead_lettered_not_run(events):
    backend = events.make()
    queue, tick, marker = events.queue('ttl'), events.type('tick'), events.type('marker')
    handled = []
    backend.subscribe(queue, [tick, marker], lambda e: handled.append(e.type), sequential=True)
    late = new(tick, ttl=0.1)
    backend.emit(late, delay=0.4)
    backend.emit(new(marker), delay=0.8)  # after the late one: once it is handled, that one was settled
    wait_until(lambda: events.dead_letters(queue), WAIT, 'the dead letter')
    wait_until(lambda: marker in handled, WAIT, 'the marker')
    assert handled == [marker]
    [dead] = events.dead_letters(queue)
    assert (dead['id'], dead['attempts']) == (late.id, 1)
    assert dead['reason'].startswith('ttl expired: not handled within 0.1s of being emitted (')


def test_an_event_waiting_behind_a_busy_handler_past_its_ttl_is_dead_lettered(events):
    backend = events.make()
    queue, job = events.queue('busy'), events.type('job')
    handled = []

    def handle(event):
        handled.append(event['n'])
        gevent.sleep(0.5)

    backend.subscribe(queue, [job], handle, sequential=True)
    backend.emit(new(job, {'n': 1}, ttl=10))
    wait_until(lambda: handled, WAIT, 'the first job')
    backend.emit(new(job, {'n': 2}, ttl=0.2))  # waits 0.5 s for the first to end
    wait_until(lambda: events.dead_letters(queue), WAIT, 'the dead letter')
    assert handled == [1]
    assert events.dead_letters(queue)[0]['reason'].startswith('ttl expired')


def test_a_handler_runs_under_the_deadline_of_its_events_ttl(events):
    backend = events.make()
    queue, tick = events.queue('left'), events.type('tick')
    left = []
    backend.subscribe(queue, [tick], lambda e: left.append(fannode.time_left()))
    backend.emit(new(tick, ttl=30))
    backend.emit(new(tick))  # without a ttl: no deadline
    wait_until(lambda: len(left) == 2, WAIT, 'both events')
    timed = [x for x in left if x is not None]
    assert len(timed) == 1 and 0 < timed[0] <= 30
    assert not events.dead_letters(queue)
