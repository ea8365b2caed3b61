"""What every events backend does with what it cannot use (docs/events.md, "Poison events
and dead letters", "Emit errors"), checked against local://, hub:// and amqp://: a message
that is not an event is dead-lettered at once with its reason, a handler that raises
anything fails that event only, and an emit that cannot be sent raises in the emitter.
None of them ever holds up the events behind it."""
from __future__ import annotations

import collections
import uuid

import gevent
import pytest

from fannode.core.events import Event
from fannode.exceptions import UsageError
from fannode.testing import wait_until

WAIT = 15.0  # a deadline only: every wait returns as soon as its condition holds
MIB = 1024 * 1024
PREFETCH = 100  # what a consumer holds unacked at most: more poison than this would stall it


def new(type: str, body: dict | None = None) -> Event:
    return Event.new(type, body or {}, uuid.uuid4().hex, 'contract')


# (what, the message published as `data(type)`, what the dead letter's reason says)
POISON = [
    ('a body that is a list', lambda t: {'type': t, 'body': [1, 2], 'headers': {'id': 'p'}},
     'the body is a list, not a map'),
    ('a body that is text', lambda t: {'type': t, 'body': 'hello', 'headers': {}}, 'the body is a str, not a map'),
    ('a trace id that is a number', lambda t: {'type': t, 'body': {}, 'headers': {'trace_id': 5}},
     'header trace_id is 5'),
    ('a trace id of a megabyte', lambda t: {'type': t, 'body': {}, 'headers': {'trace_id': 'x' * MIB}},
     "header trace_id is 'xxxx"),
    ('a time that is text', lambda t: {'type': t, 'body': {}, 'headers': {'time': 'noon'}},
     "header time is 'noon', not a number"),
    ('a type of a megabyte', lambda t: {'type': t + '.' + 'a' * MIB, 'body': {}}, 'characters, at most 255'),
    ('a type outside the rules', lambda t: {'type': t + '.a b', 'body': {}}, "expected dot-separated words"),
    # msgpack carries integers of any size, and past 4,300 digits Python has no repr for them
    ('an id of 5,000 digits', lambda t: {'type': t, 'body': {}, 'headers': {'id': -10 ** 5000}},
     'header id is an integer of'),
]


def publish_poison(events, prefix: str, count: int) -> collections.Counter:
    """`count` poison messages of every kind in turn (types under `prefix`); how many of
    each kind went out, by the text its reason must have."""
    sent: collections.Counter = collections.Counter()
    for i in range(count):
        _, make, reason = POISON[i % len(POISON)]
        events.publish_raw(make('%s.%d' % (prefix, i)), key='%s.%d' % (prefix, i))
        sent[reason] += 1
    return sent


def reasons(dead: list[dict]) -> collections.Counter:
    counted: collections.Counter = collections.Counter()
    for letter in dead:
        assert letter['reason'].startswith('cannot read it: '), letter['reason'][:200]
        found = [r for _, _, r in POISON if r in letter['reason']]
        assert len(found) == 1, letter['reason'][:200]
        counted[found[0]] += 1
    return counted


def test_messages_that_are_not_events_are_dead_lettered_at_once_and_the_queue_goes_on(events):
    consumer, emitter = events.make(), events.make()
    queue, prefix = events.queue('poisoned'), events.type('poison')
    handled = []
    consumer.subscribe(queue, [prefix + '.#'], handled.append)
    sent = publish_poison(events, prefix, PREFETCH + 20)
    emitter.emit(new(prefix + '.good', {'n': 1}))
    wait_until(lambda: handled, WAIT, 'the good event behind the poison')
    dead = wait_until(lambda: (lambda d: d if len(d) >= PREFETCH + 20 else None)(events.dead_letters(queue)),
                      WAIT, 'every poison message dead-lettered')
    assert [e.body for e in handled] == [{'n': 1}]
    assert len(dead) == PREFETCH + 20 and reasons(dead) == sent


def test_a_sequential_consumer_with_poison_at_the_head_of_its_queue_goes_on(events):
    consumer, emitter = events.make(), events.make()
    queue, prefix = events.queue('sequential.poisoned'), events.type('poison')
    handled = []
    consumer.subscribe(queue, [prefix + '.#'], lambda e: handled.append(e['n']), sequential=True)
    sent = publish_poison(events, prefix, len(POISON))
    for n in range(5):
        emitter.emit(new(prefix + '.good', {'n': n}))
    wait_until(lambda: len(handled) == 5, WAIT, 'the five good events, after the poison')
    assert handled == [0, 1, 2, 3, 4]
    dead = wait_until(lambda: (lambda d: d if len(d) == len(POISON) else None)(events.dead_letters(queue)),
                      WAIT, 'the poison dead-lettered')
    assert reasons(dead) == sent


def publish_headers_poison(events, prefix: str) -> None:
    for i in range(PREFETCH + 20):
        events.publish_raw({'type': '%s.%d' % (prefix, i), 'body': {}, 'headers': [1, 2]})


def test_messages_whose_headers_are_not_a_map_hold_up_nothing(events):
    consumer, emitter = events.make(), events.make()
    queue, prefix = events.queue('poisoned'), events.type('poison')
    handled = []
    consumer.subscribe(queue, [prefix + '.#'], handled.append)
    publish_headers_poison(events, prefix)
    emitter.emit(new(prefix + '.good', {'n': 1}))
    wait_until(lambda: handled, WAIT, 'the good event behind the poison')
    assert [e.body for e in handled] == [{'n': 1}]


def test_messages_whose_headers_are_not_a_map_are_dead_lettered_with_their_reason(events):
    consumer = events.make()
    queue, prefix = events.queue('poisoned'), events.type('poison')
    consumer.subscribe(queue, [prefix + '.#'], print)
    publish_headers_poison(events, prefix)
    dead = wait_until(lambda: (lambda d: d if len(d) >= PREFETCH + 20 else None)(events.dead_letters(queue)),
                      WAIT, 'every poison message dead-lettered')
    assert {d['reason'] for d in dead} == {'cannot read it: event %s: the headers are a list, not a map'
                                           % d['type'] for d in dead}


def test_a_handler_that_cannot_take_the_event_is_dead_lettered_after_its_retries(events):
    consumer, emitter = events.make(), events.make()
    queue, tick = events.queue('mismatch'), events.type('tick')
    consumer.subscribe(queue, [tick], lambda: None, retry=1)  # takes no event at all
    for n in range(PREFETCH + 50):
        emitter.emit(new(tick, {'n': n}))
    dead = wait_until(lambda: (lambda d: d if len(d) >= PREFETCH + 50 else None)(events.dead_letters(queue)),
                      WAIT, 'every event dead-lettered')
    assert {(d['attempts'], d['reason'].split(':')[0]) for d in dead} == {(2, 'TypeError')}
    assert len(dead) == PREFETCH + 50


@pytest.mark.parametrize('sequential', [False, True], ids=['concurrent', 'sequential'])
def test_a_handler_raising_anything_fails_that_event_only(events, sequential):
    """SystemExit, GreenletExit, gevent.Timeout are not Exceptions: a handler that raises
    one must still have its event settled, and never end the process or the consumer."""
    consumer, emitter = events.make(), events.make()
    queue, tick = events.queue('raising'), events.type('tick')
    raised = {1: SystemExit('bye'), 2: gevent.GreenletExit('out'), 3: gevent.Timeout(1)}
    handled = []

    def handle(event):
        if event['n'] in raised:
            raise raised[event['n']]
        handled.append(event['n'])

    consumer.subscribe(queue, [tick], handle, sequential=sequential)
    sent = [new(tick, {'n': n}) for n in range(6)]
    for event in sent:
        emitter.emit(event)
    wait_until(lambda: len(handled) == 3, WAIT, 'the events that do not raise')
    dead = wait_until(lambda: (lambda d: d if len(d) == 3 else None)(events.dead_letters(queue)),
                      WAIT, 'the three that raised, dead-lettered')
    assert sorted(handled) == [0, 4, 5]
    assert sorted((d['id'], d['reason'].split(':')[0]) for d in dead) == sorted(
        [(sent[1].id, 'SystemExit'), (sent[2].id, 'GreenletExit'), (sent[3].id, 'Timeout')])


@pytest.mark.parametrize('delay', [float('nan'), float('inf'), -1, 1e30, '5', True])
def test_a_delay_that_is_not_a_number_of_seconds_is_refused_at_emit(events, delay):
    consumer, emitter = events.make(), events.make()
    tick = events.type('tick')
    got = []
    consumer.subscribe(events.queue('delays'), [tick], got.append)
    with pytest.raises(UsageError, match='event %s: delay must be a number of seconds from 0 to' % tick):
        emitter.emit(new(tick, {'n': 0}), delay=delay)
    emitter.emit(new(tick, {'n': 1}), delay=0.05)  # nothing is stuck behind the refused one
    wait_until(lambda: got, WAIT, 'the next event')
    assert [e.body for e in got] == [{'n': 1}] and emitter.flush(WAIT)


@pytest.mark.parametrize('make, message', [
    (lambda t: new(t + '.' + 'a' * MIB), r'characters, at most 255 \(\$FANNODE_EVENT_TYPE_MAX\)'),
    (lambda t: new(t, {'blob': b'x' * 2 * MIB}), r'bytes encoded, more than the 1048576 .*FANNODE_EVENT_MAX_BYTES'),
    (lambda t: Event(t, {}, dict(new(t).headers, trace_id='not an id')), 'header trace_id is'),
], ids=['type', 'size', 'trace_id'])
def test_an_event_no_broker_could_carry_is_refused_at_emit(events, make, message):
    consumer, emitter = events.make(), events.make()
    tick = events.type('tick')
    got = []
    consumer.subscribe(events.queue('big'), [tick + '.#'], got.append)
    with pytest.raises(UsageError, match=message):
        emitter.emit(make(tick))
    emitter.emit(new(tick, {'n': 1}))
    wait_until(lambda: got, WAIT, 'the next event')
    assert [e.body for e in got] == [{'n': 1}] and emitter.flush(WAIT)


@pytest.mark.parametrize('body, where, problem', [
    ({'what': object()}, "body['what']", "cannot serialize object of type 'object'"),
    ({'items': [1, 2, {'deep': object()}]}, "body['items'][2]['deep']", "cannot serialize object"),
    ({'name': 'caf\udce9'}, "body['name']", "surrogates not allowed"),
    ({'pairs': {(1, 2): 'x'}}, "body['pairs'][(1, 2)] (a tuple as a key", 'cannot decode'),
], ids=['object', 'nested', 'surrogate', 'tuple-key'])
def test_an_unencodable_body_is_refused_at_emit_naming_the_value(events, body, where, problem):
    consumer, emitter = events.make(), events.make()
    tick = events.type('tick')
    got = []
    consumer.subscribe(events.queue('probe'), [tick], got.append)
    with pytest.raises(TypeError) as caught:
        emitter.emit(new(tick, body))
    assert isinstance(caught.value, UsageError)  # a one-line error for the CLI too
    text = str(caught.value)
    assert text.startswith('event %s: %s' % (tick, where)) and problem in text and '\n' not in text, text
    emitter.emit(new(tick, {'n': 1}))
    wait_until(lambda: got, WAIT, 'the next event')
    assert [e.body for e in got] == [{'n': 1}] and emitter.flush(WAIT)


@pytest.mark.parametrize('retry', ['1', True, -1, 1.5])
def test_a_retry_count_that_is_not_a_whole_number_is_refused_at_subscribe(events, retry):
    consumer, emitter = events.make(), events.make()
    tick = events.type('tick')
    with pytest.raises(UsageError, match="retry must be a whole number >= 0, got"):
        consumer.subscribe(events.queue('retry'), [tick], print, retry=retry)
    got = []
    consumer.subscribe(events.queue('other'), [tick], got.append)
    emitter.emit(new(tick))
    wait_until(lambda: got, WAIT, 'an event on the next subscription')


def test_a_sequential_handler_running_when_its_consumer_stops_finishes_and_acks(events):
    first, emitter = events.make(), events.make()
    queue, slow, marker = events.queue('slow'), events.type('slow'), events.type('marker')
    started, finished = [], []

    def handle(event):
        started.append(event.id)
        gevent.sleep(0.3)
        finished.append(event.id)

    first.subscribe(queue, [slow, marker], handle, sequential=True)
    sent = new(slow)
    emitter.emit(sent)
    wait_until(lambda: started, WAIT, 'the handler to start')
    events.close(first)  # stops while the handler runs: it must finish, and ack
    assert finished == [sent.id]
    seen = []
    events.make().subscribe(queue, [slow, marker], lambda e: seen.append(e.type), sequential=True)
    emitter.emit(new(marker))
    wait_until(lambda: marker in seen, WAIT, 'the marker on the next consumer')
    assert seen == [marker]  # the finished event was acked: it does not come again
