"""What the hub keeps is bounded in bytes: log records (oldest dropped first, counted),
the event backlog (publishes refused, emitters keep their events), shared config and the
registry (refused), what a follower that stops reading is pushed; and no number of
peers, queues, consumers or names asked about grows it without bound."""
from __future__ import annotations

import gc
import logging
import subprocess
import tracemalloc

import psutil
import pytest
import zmq

from conftest import FANNODE, in_thread
from fannode.core import wire
from fannode.hub import broker, configstore, logstore, registry  # noqa: F401 - make() sets limits by module name
from fannode.testing import wait_until
from live import LiveHub, event, instance, wait_gone

KIB, MIB = 1024, 1024 * 1024


@pytest.fixture
def make(monkeypatch):
    """make(**limits) -> a live hub whose stores got those budgets (set before it starts)."""
    made = []

    def start(journal=None, **limits):
        for name, value in limits.items():
            module, constant = name.split('__')
            monkeypatch.setattr(globals()[module], constant, value, raising=False)
        made.append(LiveHub(journal=journal))
        return made[-1]
    yield start
    for h in made:
        h.close()


def records(trace, n, size=1024):
    return [{'kind': 'log', 'ts': float(i), 'service': 'Echo', 'instance': 'i', 'pid': 1, 'host': 'h',
             'level': 'INFO', 'logger': 'x', 'msg': '%s %d ' % (trace, i) + 'x' * size, 'trace': trace,
             'span': ''} for i in range(n)]


def test_the_log_hub_keeps_records_within_its_budget_and_drops_the_oldest(make, caplog):
    """300 traces of 100 records of 1 KiB (~45 MiB as Python objects) into a hub whose
    log budget is 4 MiB: it keeps the newest, says what it dropped, and its memory grows
    by about the budget."""
    live = make(logstore__BUDGET=4 * MIB)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for t in range(300):
            assert live.ask('logs', {'records': records('trace%03d' % t, 100)}) is None
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 8 * MIB, 'the hub kept %.1f MiB of records' % (grown / MIB)
    assert len(live.ask('trace', {'trace_id': 'trace299'})) == 100  # the newest, whole
    assert live.ask('trace', {'trace_id': 'trace000'}) == []       # the oldest, gone
    stats = live.ask('stats', {})['logs']
    assert stats['used'] <= stats['limit'] == 4 * MIB and stats['dropped'] > 25_000
    with caplog.at_level(logging.WARNING):
        wait_until(lambda: 'the log hub: ' in caplog.text, 2, 'the line about drops')
    assert 'dropped to make room, oldest first' in caplog.text and 'FANNODE_HUB_LOG_BUDGET' in caplog.text


def test_a_follower_that_stops_reading_is_not_pushed_past_its_backlog(make):
    live = make(logstore__FOLLOWER_BACKLOG=256 * KIB)
    pushed: dict[bytes, int] = {}
    push = live.hub.server.push

    def counting(peer, subject, body):
        pushed[peer] = pushed.get(peer, 0) + len(wire.Message(wire.NOTIFY, 0, subject, body).encode())
        push(peer, subject, body)
    live.hub.logs.push = counting
    stalled = zmq.Context.instance().socket(zmq.DEALER)  # follows, then never reads
    stalled.connect('tcp://127.0.0.1:%d' % live.port)
    stalled.send(wire.Message(wire.REQ, 1, 'hub.log_follow', {'history': 0}).encode())
    wait_until(lambda: live.hub.logs.followers, 2, 'the stalled follower')
    got = []
    reader = live.connect(lambda msg: got.append(msg.body['n']))
    assert live.ask('log_follow', {'history': 0}, link=reader) == {'records': [], 'n': 0}
    for t in range(40):  # 4 MiB or so of records, the reader keeping alive as tail does
        live.ask('logs', {'records': records('t%d' % t, 25)})
        assert live.ask('log_alive', {}, link=reader) is True
    wait_until(lambda: got and got[-1] == 40, 2, 'the reader to get every message')
    assert got == list(range(1, 41))  # no gap
    assert len(pushed) == 2
    stalled_bytes = min(pushed.values())
    assert stalled_bytes < 256 * KIB, 'pushed %d bytes to a follower that reads nothing' % stalled_bytes
    assert live.ask('stats', {})['logs']['skipped'] > 30
    stalled.close(linger=0)


def test_over_its_budget_the_event_backlog_refuses_publishes_until_it_drains(make):
    live = make(broker__BUDGET=256 * KIB)
    assert live.ask('declare', {'queue': 'slow', 'patterns': ['probe.#']})
    for sent in range(1000):
        answer = live.ask('publish', {'events': [event(blob='x' * 1024) for _ in range(10)]})
        if not isinstance(answer, dict):
            break
    message = live.refused('publish', {'events': [event()]}, code='unavailable')
    assert sent < 100, 'the hub took %d events for a 256 KiB budget' % (sent * 10)
    assert message.startswith('hub.publish: the event backlog is full (') and '$FANNODE_HUB_EVENT_BUDGET' in message
    assert 'most of it in queue slow (%d ready)' % (sent * 10) in message
    assert 'the emitter keeps its events and sends them again' in message
    stats = live.ask('stats', {})['events']
    assert stats['refused'] >= 2 and stats['used'] > stats['limit'] - 20 * KIB
    assert live.ask('queues', {})['slow']['bytes'] == stats['used']
    # A consumer drains it: publishes are taken again, and nothing was lost.
    tags = []
    link = live.connect(lambda msg: tags.append(msg.body['tag']))
    assert live.ask('consume', {'consumer': 'c', 'queue': 'slow', 'prefetch': 10_000}, link=link) is True
    wait_until(lambda: len(tags) == sent * 10, 5, 'every queued event delivered')
    assert live.ask('ack', {'consumer': 'c', 'tags': tags}, link=link) is True
    assert live.ask('stats', {})['events']['used'] == 0
    assert live.ask('publish', {'events': [event()]}) == {'routed': [1]}


def test_an_emitter_keeps_what_a_full_hub_refuses_and_it_all_arrives(make):
    from fannode.core.events import Event
    from fannode.events.hub import HubEvents
    live = make(broker__BUDGET=64 * KIB)
    assert live.ask('declare', {'queue': 'slow', 'patterns': ['probe.#']})
    while isinstance(live.ask('publish', {'events': [event(blob='x' * 4096)]}), dict):
        pass
    emitter = HubEvents(live.url)
    try:
        for i in range(20):
            emitter.emit(Event('probe.kept', {'i': i}))
        assert not emitter.flush(1.0)  # refused: still held by the emitter
        seen = []
        link = live.connect(lambda msg: seen.append(msg.body))
        live.ask('consume', {'consumer': 'c', 'queue': 'slow', 'prefetch': 10_000}, link=link)

        def drained():
            live.ask('ack', {'consumer': 'c', 'tags': [m['tag'] for m in seen]}, link=link)
            return {m['event']['body'].get('i') for m in seen if m['event']['type'] == 'probe.kept'} == set(range(20))
        wait_until(drained, 10, 'the emitter to send what the hub refused')
        assert emitter.flush(2.0)
    finally:
        emitter.close(1.0)


def test_shared_config_is_bounded_and_refused_over_its_budget(make):
    live = make(configstore__BUDGET=256 * KIB)
    for n in range(100):
        answer = live.ask('config_set', {'key': 'k%d' % n, 'value': 'v' * 20 * KIB})
        if not isinstance(answer, dict):
            break
    assert 5 < n < 20
    message = live.refused('config_set', {'key': 'more', 'value': 'v' * 20 * KIB}, code='unavailable')
    assert message.startswith('hub.config_set: shared config is full (') and message.endswith('delete keys first')
    assert live.ask('config_get', {'key': 'k0'})['value'] == 'v' * 20 * KIB  # nothing dropped
    assert live.ask('config_delete', {'key': 'k0'}) is True
    assert live.ask('config_set', {'key': 'more', 'value': 'v' * 20 * KIB})['value'] == 'v' * 20 * KIB


def test_the_registry_is_bounded_and_refuses_over_its_budget(make):
    live = make(registry__BUDGET=64 * KIB)
    live.hub.registry.instance_ttl = 60.0
    for n in range(100):
        answer = live.ask('register', {'instance': instance('i%d' % n, meta={'blob': 'x' * 4 * KIB})})
        if not isinstance(answer, dict):
            break
    assert 5 < n < 20
    late = instance('late', meta={'blob': 'x' * 4 * KIB})
    message = live.refused('register', {'instance': late}, code='unavailable')
    assert message.startswith('hub.register: the registry is full (') and 'FANNODE_HUB_REGISTRY_BUDGET' in message
    assert len(live.ask('lookup', {'service': 'Echo'})['instances']) == n
    too_many = {'S%d' % i: '' for i in range(2000)}
    assert 'cannot watch 2000 more service(s)' in live.refused('sync', {'versions': too_many}, code='unavailable')
    assert live.ask('unregister', {'id': 'i0'}) is True
    assert live.ask('register', {'instance': late}) == {'epoch': live.hub.registry.epoch}


def test_names_asked_about_once_are_not_kept(make):
    live = make()
    for i in range(3000):
        live.ask('lookup', {'service': 'nobody%d' % i})
        live.ask('config_get', {'key': 'nothing%d' % i})
    assert len(live.hub.registry.watchers.versions) < 10 and len(live.hub.config.watchers.versions) < 10
    # ... and a watched one keeps a stable version while it is watched
    first = live.ask('lookup', {'service': 'Later', 'watch': True})['version']
    live.ask('lookup', {'service': 'other'})
    assert live.ask('sync', {'versions': {'Later': first}}) == {}


def test_one_connection_cannot_take_every_consumer_queue_or_follower(make):
    live = make(broker__MAX_PEER_CONSUMERS=3, broker__MAX_QUEUES=5, logstore__MAX_FOLLOWERS=1)
    for i in range(4):
        assert live.ask('declare', {'queue': 'q%d' % i, 'patterns': ['x']})
    for i in range(3):
        assert live.ask('consume', {'consumer': 'c%d' % i, 'queue': 'q%d' % i}) is True
    assert live.refused('consume', {'consumer': 'c9', 'queue': 'q3'}, code='unavailable') == \
        'hub.consume: this connection has 3 consumers, the most one may have ($FANNODE_HUB_MAX_PEER_CONSUMERS)'
    other = live.connect()
    assert live.ask('consume', {'consumer': 'c9', 'queue': 'q3'}, link=other) is True  # another connection may
    assert live.ask('declare', {'queue': 'q4', 'patterns': ['x']})
    assert live.refused('declare', {'queue': 'q5', 'patterns': ['x']}, code='unavailable') == \
        'hub.declare: the hub has 5 queues, the most it keeps ($FANNODE_HUB_MAX_QUEUES)'
    assert live.ask('log_follow', {}) == {'records': [], 'n': 0}
    assert 'the hub has 1 followers already' in live.ask('log_follow', {}, link=other).args[0]


def test_a_queue_whose_owner_never_consumes_is_deleted(make):
    live = make(broker__CONSUMER_TTL=0.3)
    assert live.ask('declare', {'queue': 'mine', 'patterns': ['probe.#'], 'durable': False, 'owner': 'ghost'})
    assert live.ask('publish', {'events': [event()]}) == {'routed': [1]}
    wait_until(lambda: 'mine' not in live.ask('queues', {}), 3, 'the ownerless queue to go')
    assert live.ask('publish', {'events': [event()]}) == {'routed': [0]}
    assert live.ask('stats', {})['events']['used'] == 0


def test_a_bad_entry_never_stops_the_expiry_loop(make, caplog):
    live = make()
    live.hub.registry.instance_ttl = 0.2
    reg = live.hub.registry
    # What an unchecked register used to keep: the loop logged its id[:8], and died.
    reg.instances[5] = {'id': 5, 'endpoint': 'tcp://x:1', 'services': 'EchoX', 'started': 'zzz'}  # type: ignore
    reg.expires[5] = 0.0  # type: ignore
    wait_until(lambda: 5 not in reg.instances, 2, 'the bad entry to be expired')
    live.ask('register', {'instance': instance('after')})
    wait_gone(live, 'after')
    live.ask('register', {'instance': instance('again')})
    wait_gone(live, 'again')
    assert caplog.text.count('(logged once)') <= 2


def test_a_log_only_hub_listens_on_loopback_unless_told(make, tmp_path):
    live = make()
    proc = subprocess.Popen([*FANNODE, 'hub', '--logs-only', '--registry', live.url], cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = in_thread(proc.stdout.readline)
        assert line.startswith('log hub listening at tcp://127.0.0.1:'), line
        listening = [c.laddr.ip for c in psutil.Process(proc.pid).net_connections('tcp') if c.status == 'LISTEN']
        assert listening == ['127.0.0.1']
        wait_until(lambda: live.ask('lookup', {'service': 'fannode.logs'})['instances'], 5, 'its registration')
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
