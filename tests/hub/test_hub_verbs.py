"""Bad bodies thrown at every verb of a real hub over its socket: each gets one refusal
naming the verb and the field, and afterwards the hub still lists and looks up services,
takes events, and expires instances that stop heartbeating."""
from __future__ import annotations

import json
import math
import subprocess

import gevent
import pytest

from conftest import FANNODE, in_thread
from fannode.hub import logstore
from fannode.hub.server import Hub
from fannode.testing import wait_until
from live import LiveHub, event, instance, wait_gone

BIG = 'x' * (1 << 20)

# (verb, body, what the refusal says after "hub.<verb>: ")
CASES = [
    ('register', {'instance': instance('a', started='zzz')}, "instance.started: expected a number, got str 'zzz'"),
    ('register', {'instance': instance(5)}, 'instance.id: expected a string, got int 5'),
    ('register', {'instance': instance('a', services='EchoX')}, "instance.services: expected a list, got str 'EchoX'"),
    ('register', {'instance': instance('a', services=[])}, 'instance.services: expected 1 to 100 items, got 0'),
    ('register', {'instance': instance('a', services=[['Echo']])}, 'instance.services[0]: expected a string'),
    ('register', {'instance': instance('a', started=math.nan)}, 'instance.started: must be from'),
    ('register', {'instance': instance('a', pid=True)}, 'instance.pid: expected a whole number, got bool True'),
    ('register', {'instance': instance('a', meta=[])}, 'instance.meta: expected a map'),
    ('register', {'instance': instance('a', meta={'blob': BIG})}, 'the instance map takes about'),
    ('register', {'instance': instance(BIG)}, 'instance.id: longer than 512 characters (1048576)'),
    ('register', {'instance': dict(instance('a'), evil=1)}, "instance: unknown field 'evil'"),
    ('register', {'instance': {'id': 'a', 'services': ['Echo']}}, "instance: missing field 'endpoint'"),
    ('register', {'instance': 'a'}, "instance: expected a map, got str 'a'"),
    ('register', {}, "missing argument 'instance'"),
    ('register', {'instance': instance('a'), 'x': 1}, "unknown argument 'x' (it takes instance)"),
    ('register', [1, 2], 'the body must be a map of arguments, got list [1, 2]'),
    ('unregister', {'id': None}, 'id: expected a string, got NoneType None'),
    ('heartbeat', {'ids': 'abc'}, "ids: expected a list, got str 'abc'"),
    ('heartbeat', {'ids': [1]}, 'ids[0]: expected a string, got int 1'),
    ('heartbeat', {'ids': ['a'] * 10_001}, 'ids: expected 0 to 10000 items, got 10001'),
    ('lookup', {'service': 5}, 'service: expected a string, got int 5'),
    ('lookup', {'service': 'Echo', 'watch': 'yes'}, "watch: expected true or false, got str 'yes'"),
    ('lookup', {'service': ''}, 'service: must not be empty'),
    ('sync', {'versions': ['Echo']}, "versions: expected a map, got list ['Echo']"),
    ('sync', {'versions': {'Echo': 5}}, "versions['Echo']: expected a string, got int 5"),
    ('services', {'x': 1}, "unknown argument 'x' (it takes none)"),
    ('declare', {'queue': BIG, 'patterns': ['a']}, 'queue: longer than 512 characters'),
    ('declare', {'queue': 'q', 'patterns': 'a.b'}, "patterns: expected a list, got str 'a.b'"),
    ('declare', {'queue': 'q', 'patterns': ['a..b']}, "patterns[0]: bad event pattern 'a..b'"),
    ('declare', {'queue': 'q', 'patterns': []}, 'patterns: expected 1 to 100 items, got 0'),
    ('declare', {'queue': 'q', 'patterns': ['a'] * 101}, 'patterns: expected 1 to 100 items, got 101'),
    ('declare', {'queue': 'q', 'patterns': ['a'], 'durable': 'no'}, "durable: expected true or false"),
    ('declare', {'queue': 'q', 'patterns': ['a'], 'owner': 5}, 'owner: expected a string, got int 5'),
    ('consume', {'consumer': 'c', 'queue': 'probe', 'prefetch': 10 ** 9}, 'prefetch: must be from 1 to 10000'),
    ('consume', {'consumer': 'c', 'queue': 'probe', 'prefetch': -1}, 'prefetch: must be from 1 to 10000'),
    ('consume', {'consumer': 'c', 'queue': 'probe', 'prefetch': 1.5}, 'prefetch: expected a whole number'),
    ('consume', {'consumer': 'c', 'queue': 'nope'}, "no queue 'nope' (declare it first)"),
    ('consume', {'consumer': 'probe-c', 'queue': 'other'}, "consumer 'probe-c' already consumes queue 'probe'"),
    ('cancel', {'consumer': []}, 'consumer: expected a string, got list []'),
    ('alive', {'consumers': 'c'}, "consumers: expected a list, got str 'c'"),
    ('publish', {'events': 'x'}, "events: expected a list, got str 'x'"),
    ('publish', {'events': [{'event': {'type': 'a b'}}]}, "events[0].event.type: bad event type 'a b'"),
    ('publish', {'events': [dict(event(), delay=-1)]}, 'events[0].delay: must be from 0 to'),
    ('publish', {'events': [dict(event(), delay=math.nan)]}, 'events[0].delay: must be from 0 to'),
    ('publish', {'events': [dict(event(), delay=math.inf)]}, 'events[0].delay: must be from 0 to'),
    ('publish', {'events': [{'event': {'type': 'a', 'body': 'str'}}]}, "events[0].event.body: expected a map"),
    ('publish', {'events': [{'event': {'type': 'a', 'headers': [1]}}]}, 'events[0].event.headers: expected a map'),
    ('publish', {'events': [{'delay': 1}]}, "events[0]: missing field 'event'"),
    ('publish', {'events': [dict(event(), evil=1)]}, "events[0]: unknown field 'evil'"),
    ('ack', {'consumer': 'c', 'tags': ['1']}, "tags[0]: expected a whole number, got str '1'"),
    ('ack', {'consumer': 'c', 'tags': [-1]}, 'tags[0]: must be from 0 to'),
    ('ack', {'consumer': 'c', 'tags': [True]}, 'tags[0]: expected a whole number, got bool True'),
    ('retry', {'consumer': 'c', 'tag': 1, 'delay': math.nan}, 'delay: must be from 0 to'),
    ('retry', {'consumer': 'c', 'tag': 1, 'delay': -5}, 'delay: must be from 0 to'),
    ('retry', {'consumer': 'c', 'tag': 'x', 'delay': 1}, "tag: expected a whole number, got str 'x'"),
    ('reject', {'consumer': 'c', 'tag': 1, 'reason': 5}, 'reason: expected a string, got int 5'),
    ('queues', {'all': True}, "unknown argument 'all' (it takes none)"),
    ('declare', {'queue': 'q', 'patterns': ['a'], 'shard': 5}, 'shard: expected a string, got int 5'),
    ('dead_letters', {'limit': -1}, 'limit: must be from 0 to 1000'),
    ('dead_letters', {'limit': 10 ** 9}, 'limit: must be from 0 to 1000'),
    ('config_get', {'key': '../etc'}, "key: bad config key '../etc'"),
    ('config_get', {'key': 5}, 'key: expected a string, got int 5'),
    ('config_get', {'key': BIG}, 'key: longer than 200 characters'),
    ('config_set', {'key': 'k', 'value': None}, 'the value cannot be null'),
    ('config_set', {'key': 'k', 'value': BIG * 2}, 'value: too big: about'),
    ('config_set', {'value': 1}, "missing argument 'key'"),
    ('config_delete', {'key': []}, 'key: expected a string, got list []'),
    ('config_keys', {'prefix': 5}, 'prefix: expected a string, got int 5'),
    ('config_watch', {'versions': {'../x': ''}}, "versions['../x']: bad config key"),
    ('ids', {'name': 'orders', 'count': 0}, 'count: must be from 1 to 1000000'),
    ('ids', {'name': 'orders', 'count': 1.5}, 'count: expected a whole number'),
    ('ids', {'name': '../x'}, "name: bad config key '../x'"),
    ('ids', {'count': 1}, "missing argument 'name'"),
    ('config_watch', {'versions': {'k': 5}}, "versions['k']: expected a string, got int 5"),
    ('logs', {'records': 'x'}, "records: expected a list, got str 'x'"),
    ('logs', {'records': [], 'dropped': -1}, 'dropped: must be from 0 to'),
    ('log_follow', {'level': 'LOUD'},
     "level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case), got 'LOUD'"),
    ('log_follow', {'history': -1}, 'history: must be from 0 to 10000'),
    ('log_follow', {'history': 10 ** 9}, 'history: must be from 0 to 10000'),
    ('log_follow', {'services': 'Echo'}, "services: expected a list, got str 'Echo'"),
    ('log_follow', {'spans': 1}, 'spans: expected true or false, got int 1'),
    ('log_alive', {'x': 1}, "unknown argument 'x' (it takes none)"),
    ('log_stop', {'x': 1}, "unknown argument 'x' (it takes none)"),
    ('trace', {'trace_id': 5}, 'trace_id: expected a string, got int 5'),
    ('trace', {'trace_id': 'a' * 100}, 'trace_id: longer than 64 characters (100)'),
    ('trace', {}, "missing argument 'trace_id'"),
    ('ping', {'x': 1}, "unknown argument 'x' (it takes none)"),
    ('stats', None, 'the body must be a map of arguments, got NoneType None'),
]


@pytest.fixture(scope='module')
def live(tmp_path_factory):
    h = LiveHub(journal=str(tmp_path_factory.mktemp('hub') / 'journal.sqlite3'))
    h.hub.registry.instance_ttl = 0.3
    assert h.ask('declare', {'queue': 'probe', 'patterns': ['probe.#']}) == {'queue': 'probe'}
    assert h.ask('declare', {'queue': 'other', 'patterns': ['other']}) == {'queue': 'other'}
    assert h.ask('consume', {'consumer': 'probe-c', 'queue': 'probe', 'prefetch': 1}) is True

    def keep_alive():
        while True:
            assert h.ask('alive', {'consumers': ['probe-c']}) == {'unknown': []}
            gevent.sleep(0.5)
    alive = gevent.spawn(keep_alive)
    yield h
    alive.kill()
    h.close()


def still_works(live: LiveHub) -> None:
    """What a user does next still works: register, look up, list, publish, expiry."""
    assert live.ask('register', {'instance': instance('good')}) == {'epoch': live.hub.registry.epoch}
    found = live.ask('lookup', {'service': 'Echo'})
    assert [i['id'] for i in found['instances']] == ['good']
    assert list(live.ask('services', {})) == ['Echo']
    assert live.ask('publish', {'events': [event()]}) == {'routed': [1]}
    wait_gone(live, 'good')  # nothing heartbeats it: the expiry loop must drop it


@pytest.mark.parametrize('verb,body,says', CASES, ids=['%s-%d' % (c[0], i) for i, c in enumerate(CASES)])
def test_a_bad_body_is_refused_with_one_line_naming_the_verb_and_field(live, verb, body, says):
    message = live.refused(verb, body)
    assert message.startswith('hub.%s: ' % verb), message
    assert says in message, message
    still_works(live)


def test_every_verb_has_bad_bodies_here():
    verbs = {name[len('rpc_'):] for name in dir(Hub) if name.startswith('rpc_')}
    assert verbs == {c[0] for c in CASES}


def test_an_unknown_verb_is_refused_as_such(live):
    assert live.refused('nope', {}, code='unknown_method') == "the hub has no method 'hub.nope'"
    still_works(live)


def test_a_bad_register_never_stops_discover_or_expiry(live, tmp_path):
    """The bug as users met it: one register with `started: "zzz"` and every later
    `fannode discover` failed; one with an int id and expiry stopped for good."""
    live.refused('register', {'instance': instance('zzz', started='zzz')})
    live.refused('register', {'instance': instance(12345)})
    live.refused('register', {'instance': instance('fake', services='EchoX')})
    assert live.ask('register', {'instance': instance('real', services=['Echo'])})
    result = in_thread(subprocess.run, [*FANNODE, 'discover', 'Echo', '--json', '--registry', live.url],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert [i['id'] for i in json.loads(result.stdout)['Echo']] == ['real']
    wait_gone(live, 'real')


def test_log_records_the_hub_cannot_read_are_counted_and_the_rest_kept(live):
    good = {'kind': 'log', 'ts': 2.0, 'service': 'Echo', 'level': 'INFO', 'msg': 'kept', 'trace': 'feed01'}
    bad = [5, 'text', {'ts': 'yesterday', 'msg': 'x'}, {'trace': [1], 'msg': 'x'}, {1: 'x'},
           {'ts': math.nan}, {'service': 7}]
    before = live.ask('stats', {})['logs']['refused']
    live.ask('logs', {'records': bad + [good]})  # sent oneway by shippers: no answer to read
    assert [r['msg'] for r in live.ask('trace', {'trace_id': 'feed'})] == ['kept']
    follow = live.ask('log_follow', {'services': ['echo'], 'history': 10})
    assert [r['msg'] for r in follow['records']] == ['kept']
    assert live.ask('stats', {})['logs']['refused'] == before + len(bad)
    assert live.ask('log_stop', {}) is True
    still_works(live)


def test_a_huge_log_line_is_cut_not_kept_whole(live, monkeypatch):
    monkeypatch.setattr(logstore, 'MAX_RECORD', 64 * 1024)
    record = {'kind': 'log', 'ts': 3.0, 'service': 'Big', 'level': 'INFO', 'msg': BIG, 'trace': 'b1g'}
    live.ask('logs', {'records': [record]})
    kept, = live.ask('trace', {'trace_id': 'b1g'})
    assert len(kept['msg']) < 64 * 1024 and kept['msg'].endswith('characters cut by the log hub]')


def test_a_log_only_hub_answers_log_verbs_only():
    h = LiveHub(logs_only=True)
    try:
        assert h.refused('register', {'instance': instance('a')}, code='unknown_method') == \
            "this is a log-only hub: it has no method 'hub.register'"
        h.refused('config_set', {'key': 'k', 'value': 1}, code='unknown_method')
        assert h.ask('logs', {'records': [{'msg': 'hi', 'trace': 't1'}]}) is None
        wait_until(lambda: h.ask('trace', {'trace_id': 't1'}), 2, 'the record')
    finally:
        h.close()
