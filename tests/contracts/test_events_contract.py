"""What every events backend promises (fannode/events/base.py, docs/events.md), checked
against each: local://, hub:// and amqp://. `events.make()` opens one more client;
`events.type('tick')` and `events.queue('q')` are names of the test's own."""
from __future__ import annotations

import collections
import datetime
import decimal
import time
import uuid

import gevent
import pytest

from fannode.core import serial
from fannode.core.events import Event
from fannode.exceptions import FannodeError
from fannode.testing import wait_until

WAIT = 15.0  # a deadline only: every wait returns as soon as its condition holds


def new(type: str, body: dict | None = None) -> Event:
    return Event.new(type, body or {}, uuid.uuid4().hex, 'contract')


def test_an_event_is_handled_once_per_queue_by_competing_consumers(events):
    first, second, emitter = events.make(), events.make(), events.make()
    queue, tick = events.queue('once'), events.type('tick')
    handled = []
    for name, backend in (('first', first), ('second', second)):
        backend.subscribe(queue, [tick], lambda e, name=name: handled.append((name, e['n'])))
    for n in range(100):
        emitter.emit(new(tick, {'n': n}))
    wait_until(lambda: len(handled) >= 100, WAIT, '100 events handled')
    events.close(first)  # handlers done and acked, consumers gone: the counts below are final
    events.close(second)
    assert sorted(n for _, n in handled) == list(range(100))  # each exactly once
    assert {name for name, _ in handled} == {'first', 'second'}  # spread over both


def test_every_queue_bound_to_an_event_gets_its_own_copy(events):
    """Broadcast handlers: a queue each, gone with its consumer."""
    tick = events.type('tick')
    handled = collections.defaultdict(list)
    clients = [events.make() for _ in range(3)]
    for i, backend in enumerate(clients):
        backend.subscribe(events.queue('everywhere.%d' % i), [tick], lambda e, i=i: handled[i].append(e['n']),
                          durable=False, exclusive=True)
    emitter = events.make()
    for n in range(50):
        emitter.emit(new(tick, {'n': n}))
    wait_until(lambda: all(len(handled[i]) >= 50 for i in range(3)), WAIT, 'every copy handled')
    for backend in clients:
        events.close(backend)
    assert {i: sorted(ns) for i, ns in handled.items()} == {i: list(range(50)) for i in range(3)}


def test_topic_patterns_route_as_amqp_topics_do(events):
    backend = events.make()
    t = events.type
    got = collections.defaultdict(list)
    patterns = [t('order.*'), t('order.#'), t('*'), t('#.late')]
    for i, pattern in enumerate(patterns):
        backend.subscribe(events.queue('patterns.%d' % i), [pattern, t('end')],
                          lambda e, p=pattern: got[p].append(e.type), durable=False, exclusive=True,
                          sequential=True)
    for name in ('order', 'order.paid', 'order.paid.late', 'late', 'other.thing', 'end'):
        backend.emit(new(t(name)))
    # 'end' goes last into every queue; a queue is FIFO, so once it is handled, so is the rest
    wait_until(lambda: all(got[p][-1:] == [t('end')] for p in patterns), WAIT, 'the end marker everywhere')
    assert got == {t('order.*'): [t('order.paid'), t('end')],
                   t('order.#'): [t('order'), t('order.paid'), t('order.paid.late'), t('end')],
                   t('*'): [t('order'), t('late'), t('end')],  # bound twice, delivered once
                   t('#.late'): [t('order.paid.late'), t('late'), t('end')]}


def test_the_body_and_envelope_arrive_as_the_wire_codec_gives_them(events):
    """Events travel as msgpack (core/serial): a tuple arrives as a list, and every value
    the codec knows arrives as itself."""
    backend = events.make()
    tick = events.type('tick')
    got = []
    backend.subscribe(events.queue('probe'), [tick], got.append)
    body = {'pair': (1, 2), 'nested': {'inner': ({'deep': (3,)},)}, 'raw': b'\x00\xff', 'text': 'grüß',
            'when': datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc),
            'price': decimal.Decimal('9.99'), 'id': uuid.UUID(int=7), 'tags': {'a', 'b'}, 'big': 2 ** 70}
    sent = new(tick, body)
    backend.emit(sent)
    event, = wait_until(lambda: got, WAIT, 'the event')
    assert event.body == serial.loads(serial.dumps(body))
    assert event['pair'] == [1, 2] and type(event['pair']) is list
    assert event['nested'] == {'inner': [{'deep': [3]}]}
    assert event.type == tick and event.attempt == 1
    for header in ('id', 'trace_id', 'source', 'span', 'time'):
        assert event.headers[header] == sent.headers[header], header


def test_a_body_the_codec_cannot_encode_is_refused_at_emit(events):
    backend = events.make()
    tick = events.type('tick')
    got = []
    backend.subscribe(events.queue('probe'), [tick], got.append)
    for delay in (None, 0.1):  # delayed: not delivered while emit runs, still refused by it
        with pytest.raises(TypeError, match='cannot serialize'):
            backend.emit(new(tick, {'what': object()}), delay=delay)
    backend.emit(new(tick, {'n': 1}))  # nothing is stuck behind the refused ones
    wait_until(lambda: got, WAIT, 'the next event')
    assert [e.body for e in got] == [{'n': 1}]


def test_changes_to_a_body_after_emit_are_not_sent(events):
    backend = events.make()
    tick = events.type('tick')
    got = []
    backend.subscribe(events.queue('probe'), [tick], got.append)
    items = [1]
    backend.emit(new(tick, {'items': items, 'n': 1}))
    backend.emit(new(tick, {'items': items, 'n': 2}), delay=0.1)  # still waiting in the broker
    items.append(2)  # a caller reusing its list
    wait_until(lambda: len(got) == 2, WAIT, 'both events')
    assert [e['items'] for e in got] == [[1], [1]]


def test_a_failing_handler_is_retried_with_backoff_then_dead_lettered(events, caplog):
    backend = events.make()
    queue, broken = events.queue('broken'), events.type('broken')
    attempts = []

    def fail(event):
        attempts.append((event.attempt, time.monotonic()))
        raise ValueError('no')

    backend.subscribe(queue, [broken], fail, retry=2)
    sent = new(broken)
    backend.emit(sent)
    line = 'dead-lettered event %s (%s) from queue %s after 3 attempt(s): ValueError: no' % (sent.id, broken, queue)
    # The broker logs it once it has set the event aside: no attempt can come after that.
    wait_until(lambda: any(r.getMessage() == line for r in caplog.records), WAIT, 'the dead letter')
    assert [a for a, _ in attempts] == [1, 2, 3]
    assert attempts[1][1] - attempts[0][1] >= 0.1 and attempts[2][1] - attempts[1][1] >= 0.2  # backoff
    assert events.dead_letters(queue) == [{'id': sent.id, 'type': broken, 'attempts': 3, 'reason': 'ValueError: no'}]


def test_a_handler_that_succeeds_on_a_retry_is_done_with_the_event(events, caplog):
    backend = events.make()
    queue, flaky, marker = events.queue('flaky'), events.type('flaky'), events.type('marker')
    seen = []

    def handle(event):
        seen.append((event.type, event.attempt))
        if event.type == flaky and event.attempt == 1:
            raise ValueError('once')

    backend.subscribe(queue, [flaky, marker], handle, retry=3, sequential=True)
    backend.emit(new(flaky))
    wait_until(lambda: (flaky, 2) in seen, WAIT, 'the retry')
    # One at a time: the marker is delivered only once the retry is acked.
    backend.emit(new(marker))
    wait_until(lambda: (marker, 1) in seen, WAIT, 'the marker')
    assert seen == [(flaky, 1), (flaky, 2), (marker, 1)]
    assert not any('dead-lettered' in r.getMessage() for r in caplog.records)


def test_each_delivery_has_a_body_and_headers_of_its_own(events):
    """What a handler does to the event it got is not what its retry gets."""
    backend = events.make()
    queue, tick = events.queue('retried'), events.type('tick')
    got = []

    def handle(event):
        got.append((event.attempt, dict(event.headers), repr(event.body)))
        event.headers['mine'] = event.attempt
        event.body['items'].append('added by attempt %d' % event.attempt)
        if event.attempt == 1:
            raise ValueError('again')

    backend.subscribe(queue, [tick], handle, retry=1)
    backend.emit(new(tick, {'items': [1]}))
    wait_until(lambda: len(got) == 2, WAIT, 'the retry')
    (_, first, first_body), (_, second, second_body) = got
    assert 'mine' not in second and second['attempt'] == 2 and first['attempt'] == 1
    assert first_body == second_body == repr({'items': [1]})


def test_each_queue_gets_a_body_of_its_own(events):
    backend = events.make()
    tick = events.type('tick')
    got = []

    def handle(event):
        got.append(repr(event.body))
        event.body['items'].append('changed')

    for name in ('a', 'b'):
        backend.subscribe(events.queue(name), [tick], handle, sequential=True)
    backend.emit(new(tick, {'items': [1]}))
    wait_until(lambda: len(got) == 2, WAIT, 'both copies')
    assert got == [repr({'items': [1]})] * 2


def test_delayed_events_arrive_no_earlier_than_asked_and_a_long_delay_holds_up_no_short_one(events):
    backend = events.make()
    later = events.type('later')
    arrived = {}
    backend.subscribe(events.queue('later'), [later], lambda e: arrived.setdefault(e['n'], time.monotonic()))
    sent = time.monotonic()
    backend.emit(new(later, {'n': 2}), delay=1.5)  # first in, and longest
    backend.emit(new(later, {'n': 1}), delay=0.3)
    wait_until(lambda: len(arrived) == 2, WAIT, 'both delayed events')
    assert arrived[1] - sent >= 0.3 and arrived[2] - sent >= 1.5
    assert arrived[1] < arrived[2]  # not held behind the longer one


def test_a_sequential_handler_takes_one_event_at_a_time_in_order(events):
    backend = events.make()
    step = events.type('step')
    running, seen = [0], []

    def handle(event):
        running[0] += 1
        seen.append((running[0], event['n']))
        gevent.sleep(0.001 * (event['n'] % 3))  # uneven work must not reorder anything
        running[0] -= 1

    backend.subscribe(events.queue('in.order'), [step], handle, sequential=True)
    for n in range(30):
        backend.emit(new(step, {'n': n}))
    wait_until(lambda: len(seen) == 30, WAIT, 'all 30 events')
    assert [n for _, n in seen] == list(range(30))
    assert {r for r, _ in seen} == {1}  # never two at once


def test_a_durable_queue_keeps_events_while_nobody_consumes(events):
    queue, tick = events.queue('durable'), events.type('tick')
    consumer, emitter = events.make(), events.make()
    consumer.subscribe(queue, [tick], lambda e: None)
    events.close(consumer)  # the queue stays, with nobody consuming
    for n in range(20):
        emitter.emit(new(tick, {'n': n}))
    assert emitter.flush(10)
    got = []
    events.make().subscribe(queue, [tick], lambda e: got.append(e['n']), sequential=True)
    wait_until(lambda: len(got) >= 20, WAIT, 'the events kept for the next consumer')
    assert got == list(range(20))


def test_a_bad_pattern_is_refused_at_subscribe(events):
    backend = events.make()
    with pytest.raises(FannodeError, match="bad event pattern 'a b'"):
        backend.subscribe(events.queue('bad'), [events.type('ok'), 'a b'], print)


def test_a_sharded_queue_hands_each_key_to_one_consumer_in_order_or_is_refused(events):
    """On the hub's broker (local://, hub://); RabbitMQ refuses it at subscribe, in one line."""
    queue, tick = events.queue('sharded'), events.type('tick')
    if events.scheme == 'amqp':
        with pytest.raises(FannodeError, match="sharded event handlers .* need the hub's broker"):
            events.make().subscribe(queue, [tick], lambda e: None, shard='store')
        return
    handled = collections.defaultdict(list)
    for name in ('a', 'b', 'c'):
        def handle(e, name=name):
            gevent.sleep(0.001 * (e['n'] % 3))  # finish out of order if the broker let them
            handled[e['store']].append((name, e['n']))
        events.make().subscribe(queue, [tick], handle, shard='store')
    emitter = events.make()
    for n in range(300):
        emitter.emit(new(tick, {'store': n % 10, 'n': n}))
    wait_until(lambda: sum(map(len, handled.values())) >= 300, WAIT, '300 events handled')
    assert all(len({name for name, _ in seen}) == 1 for seen in handled.values())
    assert all([n for _, n in seen] == sorted(n for _, n in seen) for seen in handled.values())
    assert len({seen[0][0] for seen in handled.values()}) > 1
