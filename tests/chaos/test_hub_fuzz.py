"""A real `fannode hub` (a child process, with a journal) against hostile requests.

For every verb, bodies drawn from what the verb declares (hubinputs.py) and any value at
all; then raw frames, several frames in one message, and bytes that are not ZMTP. After
every input: the request was answered (a REP or a NACK with a one-line reason, never
silence, never an ERROR, which would mean an exception got past the checks), nothing in
the hub's log is a traceback, and the hub still does its job for a normal client —
register → lookup and services see it, publish → the event is delivered.

A hub that died or wedged is replaced before the next input, so hypothesis shrinks to
the input that did it. FANNODE_FUZZ_EXAMPLES sets the count (chaostools.py).
"""
from __future__ import annotations

import os
import re
import socket
import time
import uuid

import pytest
from hypothesis import assume, given, strategies as st

from chaostools import LONG, Dealer, HubProcess, Procs, frame, fuzz, short, wait_until
from fannode.core import wire
from fannode.hub.registry import INSTANCE_TTL
from hubinputs import odd_requests, raw_frames, verb_requests

pytestmark = [pytest.mark.chaos, LONG]

ANSWER = 5.0  # seconds a request may take to be answered; the hub takes milliseconds
NACK_CODES = {'bad_arguments', 'bad_request', 'unavailable', 'unknown_method'}
# Each line the hub logs is one record of its own; what a client sent never adds a line,
# nor a character that drives a terminal (the operator may be watching `fannode hub`).
RECORD = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ')
CONTROL = re.compile('[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]')


class Probe:
    """A normal client on a connection of its own: registers, looks up, publishes and
    consumes (every event, through a queue bound to '#', acking whatever it gets)."""

    def __init__(self, endpoint: str):
        self.conn = Dealer(endpoint)
        self.consumer = 'chaos-probe-' + uuid.uuid4().hex
        self.queue = 'chaos-sink-' + uuid.uuid4().hex
        self.conn.call('hub.declare', queue=self.queue, patterns=['#'], durable=True)
        self.consume()

    def consume(self) -> None:
        self.conn.call('hub.consume', consumer=self.consumer, queue=self.queue, prefetch=10_000)

    def check(self) -> None:
        conn = self.conn
        conn.call('hub.ping')
        me = uuid.uuid4().hex
        conn.call('hub.register', instance={'id': me, 'endpoint': 'tcp://127.0.0.1:9', 'services': ['chaos.Probe']})
        assert me in [i['id'] for i in conn.call('hub.lookup', service='chaos.Probe')['instances']]
        assert me in [i['id'] for i in conn.call('hub.services').get('chaos.Probe', [])]
        assert conn.call('hub.unregister', id=me) is True
        if conn.call('hub.alive', consumers=[self.consumer])['unknown']:
            self.consume()  # a slow shrink outlived its lease
        event = {'type': 'chaos.probe', 'body': {'mark': me}, 'headers': {'id': me, 'source': 'chaos'}}
        conn.call('hub.publish', events=[{'event': event}])
        self.wait_delivery(me)

    def wait_delivery(self, mark: str) -> None:
        tags, deadline = [], time.monotonic() + ANSWER
        found = False
        while not found:
            while self.conn.notes:
                note = self.conn.notes.pop(0)
                body = note.body if note.subject == 'event' else None
                assert type(body) is dict and type(body.get('tag')) is int, 'a delivery no consumer can use: %s' % (
                    short(note.body))
                tags.append(body['tag'])
                found = found or (body.get('consumer') == self.consumer and type(body['event']) is dict
                                  and body['event'].get('body') == {'mark': mark})
            if found:
                break
            left = deadline - time.monotonic()
            assert left > 0, 'the probe event was not delivered within %gs' % ANSWER
            msg = self.conn.read(left)
            if msg is not None and msg.type == wire.NOTIFY:
                self.conn.notes.append(msg)
        self.conn.call('hub.ack', consumer=self.consumer, tags=tags)

    def close(self) -> None:
        self.conn.close()


class HubUnderTest:
    """The hub the fuzz tests share, replaced when an input killed or wedged it."""

    def __init__(self, procs: Procs):
        self.procs = procs
        self.hub: HubProcess | None = None
        self.broken = True
        self.read_up_to = 0

    def ensure(self) -> None:
        if self.hub is not None and self.hub.alive and not self.broken:
            return
        if self.hub is not None:
            self.hub.kill9()
            self.fuzz.close()
            self.probe.close()
        self.hub = HubProcess(self.procs).start()
        self.fuzz = Dealer(self.hub.endpoint)
        self.probe = Probe(self.hub.endpoint)
        self.read_up_to = len(self.hub.log())
        self.broken = False

    def close(self) -> None:
        if self.hub is not None:
            self.fuzz.close()
            self.probe.close()

    def new_log(self) -> str:
        text = self.hub.log()
        new, self.read_up_to = text[self.read_up_to:], len(text)
        return new

    def still_serves(self, what: str) -> None:
        """The hub is up, logged no traceback, and serves a normal client."""
        assert self.hub.alive, 'the hub exited (%s) after %s:\n%s' % (self.hub.proc.returncode, what,
                                                                     self.hub.log()[-3000:])
        try:
            self.probe.check()
        except AssertionError as e:
            raise AssertionError('after %s the hub no longer serves: %s' % (what, e)) from None
        log = self.new_log()
        if 'Traceback' in log:
            raise Misanswer('the hub logged a traceback after %s:\n%s' % (what, log[-3000:]))
        forged = [line for line in log.split('\n')[:-1] if CONTROL.search(line)
                  or not (RECORD.match(line) or line.startswith('hub listening at '))]
        if forged:
            raise Misanswer('after %s the hub logged what a client sent, raw: %s' % (what, short(forged[:3], 500)))


@pytest.fixture(scope='module')
def hub(tmp_path_factory):
    procs = Procs(tmp_path_factory.mktemp('hubfuzz'))
    under_test = HubUnderTest(procs)
    yield under_test
    under_test.close()
    procs.cleanup()


class Misanswer(AssertionError):
    """The hub answered, but not as it should: it goes on serving the next input."""


def guarded(hub: HubUnderTest, run) -> None:
    """Run one example against a live hub; a hub that died, went silent or stopped
    serving is replaced before the next one (so shrinking starts each try afresh)."""
    hub.ensure()
    hub.fuzz.notes.clear()
    try:
        run()
    except Misanswer:
        raise
    except BaseException:
        hub.broken = True
        raise


def check_answer(reply: wire.Message | None, request: dict) -> None:
    what = '%s %s' % (short(request['subject'], 60), short(request['body'], 200))
    assert reply is not None, 'silence: no answer within %gs to %s' % (ANSWER, what)
    if reply.type == wire.ERROR:
        error = reply.body if type(reply.body) is dict else {}
        raise Misanswer('an ERROR, so an exception got past the checks: %s -> %s: %s' % (
            what, error.get('type'), short(error.get('message'), 200)))
    if reply.type not in (wire.REP, wire.NACK):
        raise Misanswer('a %s to %s' % (wire.TYPE_NAMES[reply.type], what))
    body = reply.body
    if reply.type == wire.NACK and not (type(body) is dict and body.get('code') in NACK_CODES):
        raise Misanswer('a NACK body %s' % short(body))
    message = body.get('message') if reply.type == wire.NACK else ''
    if type(message) is not str or '\n' in message or CONTROL.search(message) or len(message) > 1000:
        raise Misanswer('a refusal of %s that is not one short line: %s' % (what, short(message)))


# A long run stops at its first failure; to look past bugs already reported, it can step
# around them in the bodies it sends: FANNODE_FUZZ_AVOID=bigint (integers no float holds),
# hashes (patterns of more than four '#' or '*' words), controls (control characters).
AVOID = set(os.environ.get('FANNODE_FUZZ_AVOID', '').split(','))


def avoided(value) -> bool:
    if AVOID == {''}:
        return False
    if type(value) is int:
        return 'bigint' in AVOID and abs(value) > 1e300
    if type(value) is str:
        return 'hashes' in AVOID and sum(w in ('#', '*') for w in value.split('.')) > 4 \
            or 'controls' in AVOID and CONTROL.search(value) is not None
    if type(value) in (list, tuple, set, frozenset):
        return any(avoided(v) for v in value)
    if type(value) is dict:
        return any(avoided(k) or avoided(v) for k, v in value.items())
    return False


def send_all(hub: HubUnderTest, batch: list[dict]) -> None:
    for request in batch:
        headers = request.get('headers', {})
        id, data = frame(**request)
        hub.fuzz.send(data)
        if not (type(headers) is dict and headers.get('oneway')):  # log shipping: answered only if refused
            check_answer(hub.fuzz.wait(id, ANSWER), request)
    hub.fuzz.call('hub.ping')  # the connection that sent all this still works
    hub.still_serves('%d request(s)' % len(batch))


@fuzz(3)  # cheap: three times the default count, FANNODE_FUZZ_EXAMPLES when set
@given(st.lists(verb_requests(), min_size=1, max_size=3))
def test_every_verb_answers_whatever_arguments_it_gets(hub, batch):
    assume(not any(avoided(request['body']) for request in batch))
    guarded(hub, lambda: send_all(hub, batch))


@fuzz()
@given(st.lists(odd_requests(), min_size=1, max_size=3))
def test_any_subject_envelope_and_body_is_answered(hub, batch):
    assume(not any(avoided(request['body']) for request in batch))
    guarded(hub, lambda: send_all(hub, batch))


# -- raw frames ---------------------------------------------------------------------------

@fuzz()
@given(st.lists(raw_frames(), min_size=1, max_size=4), st.sampled_from(['one message', 'several', 'tcp']))
def test_raw_frames_and_foreign_bytes_leave_the_hub_serving(hub, parts, how):
    def run():
        if how == 'one message':  # several frames in one message: dropped whole
            hub.fuzz.send(*parts)
        elif how == 'several':
            for part in parts:
                hub.fuzz.send(part)
        else:  # not ZMTP at all, straight onto the TCP port
            with socket.create_connection(('127.0.0.1', hub.hub.port), timeout=5) as raw:
                raw.sendall(b''.join(parts))
        hub.fuzz.call('hub.ping')
        hub.still_serves('%s: %s' % (how, short(parts, 500)))
    guarded(hub, run)


# -- what the fuzz found ----------------------------------------------------------------

BIG = 10 ** 400  # msgpack ext 9: an integer no float can hold
INSTANCE = {'id': 'i1', 'endpoint': 'tcp://127.0.0.1:9', 'services': ['Echo']}


@pytest.mark.parametrize('verb, body', [
    ('reject', {'consumer': 'q1', 'tag': BIG, 'reason': ''}),  # as hypothesis shrank it
    ('ack', {'consumer': 'c1', 'tags': [BIG]}),
    ('retry', {'consumer': 'c1', 'tag': 1, 'delay': BIG}),
    ('consume', {'consumer': 'c1', 'queue': 'q1', 'prefetch': -BIG}),
    ('publish', {'events': [{'event': {'type': 'a'}, 'delay': BIG}]}),
    ('dead_letters', {'limit': BIG}),
    ('register', {'instance': dict(INSTANCE, pid=BIG)}),
    ('register', {'instance': dict(INSTANCE, started=BIG)}),
    ('logs', {'records': [], 'dropped': BIG}),
    ('log_follow', {'history': BIG}),
], ids=['reject.tag', 'ack.tags', 'retry.delay', 'consume.prefetch', 'publish.delay', 'dead_letters.limit',
        'register.pid', 'register.started', 'logs.dropped', 'log_follow.history'])
def test_numbers_too_big_for_a_float_are_refused_like_any_other(hub, verb, body):
    """Found by the fuzz: Number.check (fannode/hub/schema.py) calls math.isfinite() on
    the integer, which raises OverflowError past ~1.8e308. The request got an ERROR with
    the hub's traceback instead of NACK bad_arguments, and each one logged a traceback."""
    def run():
        reply = hub.fuzz.wait(hub.fuzz.request('hub.' + verb, body), ANSWER)
        check_answer(reply, {'subject': 'hub.' + verb, 'body': body})
        assert reply.type == wire.NACK and reply.body['code'] == 'bad_arguments', reply.body
        hub.still_serves('hub.%s with %s' % (verb, short(body, 80)))
    guarded(hub, run)


EVIL = 'x\n2026-01-01 00:00:00,000 ERROR   hub forged\x1b]0;owned\x07\x1b[2J'


@pytest.mark.parametrize('verb, body, logged', [
    ('register', {'instance': dict(INSTANCE, id=EVIL)}, 'registered'),
    ('register', {'instance': dict(INSTANCE, services=[EVIL])}, 'registered'),
    ('register', {'instance': dict(INSTANCE, endpoint=EVIL)}, 'registered'),
    ('consume', {'consumer': 'c1', 'queue': '\n'}, ''),  # as hypothesis shrank it
    ('declare', {'queue': EVIL, 'patterns': ['a']}, 'is gone'),  # its consumer's lease runs out
], ids=['register.id', 'register.services', 'register.endpoint', 'consume.queue', 'declare.queue'])
def test_names_with_control_characters_reach_neither_the_log_nor_a_refusal(hub, verb, body, logged):
    """Found by the fuzz: names (instance ids, services, endpoints, queues, consumers) may
    hold any character, and the hub writes them raw into its log ('registered %s %s at
    %s', 'expired ...', 'consumer %s of %s is gone') and into refusals ("hub.consume: no
    queue '%s'"): a client can forge log lines and drive the terminal of whoever runs
    `fannode hub`. Now names with control characters are refused, as subjects are; either
    way neither the log nor the refusal may carry them raw."""
    def run():
        reply = hub.fuzz.wait(hub.fuzz.request('hub.' + verb, body), ANSWER)
        check_answer(reply, {'subject': 'hub.' + verb, 'body': body})
        if verb == 'declare' and reply.type == wire.REP:  # a queue by that name: consume it, then let it go
            reply = hub.fuzz.wait(hub.fuzz.request('hub.consume', {'consumer': EVIL, 'queue': EVIL}), ANSWER)
            check_answer(reply, {'subject': 'hub.consume', 'body': body})
        if reply.type == wire.REP:  # taken: what it logs of the name must be shown, not sent
            wait_until(lambda: logged in hub.hub.log()[hub.read_up_to:], 3 * INSTANCE_TTL,
                       message='the hub to log %r' % logged)
        hub.still_serves('hub.%s with %s' % (verb, short(body, 120)))
    guarded(hub, run)


def test_a_queue_bound_to_many_hash_words_does_not_wedge_publishing(tmp_path):
    """Topic patterns are matched with a regex in which each '#' is `(?:\\.[^.]+)*`: a
    pattern of sixteen '#' words and an event type of forty words that does not match it
    backtrack through every way of splitting the words (about 10^13). Both are well within
    the bounds (255 characters each), and anyone may declare the one and publish the other."""
    procs = Procs(tmp_path)
    hub = HubProcess(procs)
    conn, other = Dealer(hub.endpoint), Dealer(hub.endpoint)
    try:
        hub.start()
        conn.call('hub.declare', queue='greedy', patterns=['.'.join(['#'] * 16 + ['x'])])
        started = time.monotonic()
        id = conn.request('hub.publish', {'events': [{'event': {'type': '.'.join(['a'] * 40)}}]})
        reply = conn.wait(id, ANSWER)
        ping = other.wait(other.request('hub.ping', {}), 1.0)
        assert reply is not None and ping is not None, (
            'the hub wedged: no answer to the publish within %.1fs, nor to a ping from another client'
            % (time.monotonic() - started))
        assert reply.type == wire.REP and reply.body == {'routed': [0]}
    finally:
        conn.close()
        other.close()
        procs.cleanup()  # the wedged hub: SIGKILL


def test_a_hub_restarted_on_the_journal_the_fuzz_left_serves(hub):
    """Whatever the fuzz made the hub journal (queues, events, dead letters, config) is
    read back by the next hub, which then serves as before."""
    hub.ensure()
    journal, port = hub.hub.journal, hub.hub.port
    hub.hub.kill9()
    hub.fuzz.close()
    hub.probe.close()
    hub.hub = HubProcess(hub.procs, journal, port).start()
    hub.fuzz, hub.probe = Dealer(hub.hub.endpoint), Probe(hub.hub.endpoint)
    hub.read_up_to = 0
    hub.still_serves('a restart on the fuzzed journal')
    hub.fuzz.call('hub.dead_letters', limit=1000)
    hub.fuzz.call('hub.queues')
