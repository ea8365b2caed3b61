"""What the `fannode top` tests share: a fixed snapshot and a source that serves it (for
Pilot and snapshot tests), running an app headless, and a real node on a temp node.yml."""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, TESTS

sys.path[:0] = [str(TESTS / 'e2e'), str(ROOT)]
from bench.top import node_yml as greeting_node  # noqa: E402 - the node bench.top measures, smaller
from test_node import Node as E2ENode  # noqa: E402

from fannode.discovery.base import InstanceInfo
from fannode.exceptions import Timeout
from fannode.tui.rows import LEVELS, LogBatch, Rates, Snapshot, Status, TraceResult, build_rows

SIZE = (160, 45)
MiB = 1048576
T0 = 1_700_000_000.0  # log and span times of the fixed data (shown in UTC by the tests)


@pytest.fixture
def utc(monkeypatch):
    """Log and span times as the snapshots show them, wherever the tests run."""
    monkeypatch.setenv('TZ', 'UTC')
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _info(n: int, service: str, pid: int, host: str = 'vm', ready: bool = True, **meta) -> InstanceInfo:
    return InstanceInfo(id='%02d' % n * 16, endpoint='tcp://127.0.0.1:%d' % (40000 + n), services=[service],
                        pid=pid, host=host, started=T0, ready=ready, meta=meta)


def _breaker(state: str, endpoints: dict[str, str]) -> dict:
    return {'state': state, 'failures': 5 if state == 'open' else 0, 'retry_in': 2.5 if state == 'open' else None,
            'endpoints': {e: {'state': s, 'failures': 5 if s == 'open' else 0} for e, s in endpoints.items()}}


def _metrics(calls: int, errors: int = 0, p99: float = 1.5, pid: int = 0, uptime: float = 3723.0,
             events: int | None = None) -> dict:
    figures = {'rpc': {'Greeting.greet': {'calls': calls, 'errors': errors, 'p99_ms': p99},
                       'Listen.hear': {'calls': calls, 'errors': errors, 'p99_ms': p99},
                       'Greeting.get_metrics': {'calls': 999, 'errors': 0, 'p99_ms': 50.0}},
               'process': {'pid': pid, 'rss': 40 * MiB + pid, 'cpu_percent': pid % 7 * 1.5, 'uptime': uptime}}
    if events is not None:
        figures['event'] = {'Listen.on_greeted': {'calls': events, 'errors': 0, 'p99_ms': 0.4}}
    return figures


def fixed_snapshot(extra: int = 0, calls: int = 0, deps: bool = False) -> Snapshot:
    """A cluster with everything top shows: a service under the node (one instance not
    answering, one starting), one on another host, the hub and a redis block, and a
    block that failed. `extra` instances more of Greeting, `calls` more calls since. With
    `deps`, dependencies: Greeting's soft Mailer is down (its breaker open on greeting.1,
    half-open on greeting.3), a Listen instance misses its hard Store (not ready)."""
    mailer = {'dependencies': {'hard': [], 'soft': ['Mailer']}, 'missing': ['Mailer']} if deps else {}
    greeting = [_info(i, 'Greeting', 4100 + i, **mailer) for i in range(1, 4 + extra)]
    listen = [_info(10 + i, 'Listen', 5100 + i, host='db1') for i in range(1, 3)]
    if deps:
        store = {'dependencies': {'hard': ['Store'], 'soft': []}}
        listen = [_info(11, 'Listen', 5101, host='db1', **store, missing=[]),
                  _info(12, 'Listen', 5102, host='db1', ready=False, **store, missing=['Store'])]
    services = {'Greeting': greeting, 'Listen': listen}
    procs = [{'pid': 4100 + i, 'index': i, 'uptime': 3700.0, 'ready': True, 'stopping': False}
             for i in range(1, 4 + extra)]
    procs.append({'pid': 4199, 'index': 4 + extra, 'uptime': 0.4, 'ready': False, 'stopping': False})
    ps = {'node': 'vm', 'pid': 4000, 'registry': 'hub://127.0.0.1:4010', 'blocks': [
        {'name': 'hub', 'state': 'ready', 'desired': 1, 'running': 1, 'ready': 1, 'restarts': 0,
         'processes': [{'pid': 4001, 'index': 1, 'uptime': 3730.0, 'ready': True, 'stopping': False}]},
        {'name': 'greeting', 'state': 'starting', 'desired': 4 + extra, 'running': 4 + extra, 'ready': 3 + extra,
         'restarts': 2, 'processes': procs},
        {'name': 'redis', 'state': 'ready', 'desired': 1, 'running': 1, 'ready': 1, 'restarts': 0,
         'processes': [{'pid': 4300, 'index': 1, 'uptime': 3725.0, 'ready': True, 'stopping': False}]},
        {'name': 'web', 'state': 'failed', 'desired': 2, 'running': 0, 'ready': 0, 'restarts': 11,
         'processes': []},
    ]}
    rates = Rates()
    rows = ()
    for second, more in ((0, 0), (1, 10 + calls)):  # two polls a second apart: rates
        answers = {i.id: _metrics(100 * n + more * n, errors=n - 1, p99=2.5 * n, pid=i.pid, events=50 + more)
                   for n, i in enumerate(greeting + listen, 1)}
        answers[greeting[1].id] = Timeout('no metrics within 0.8s')
        if deps:
            answers[greeting[0].id]['breakers'] = {'Mailer': _breaker('open', {'tcp://10.0.0.9:4700': 'open'})}
            answers[greeting[2].id]['breakers'] = {
                'Mailer': _breaker('half-open', {'tcp://10.0.0.9:4700': 'half-open'}),
                'Listen': _breaker('closed', {'tcp://10.0.0.7:4800': 'closed'})}
        rows = build_rows(services, answers, ps, rates, now=float(second), wall=T0 + 3723.0, local_host='vm',
                          local_figures=lambda pid: (0.5, 12 * MiB))
    return Snapshot(rows, 'hub://127.0.0.1:4010', node='node.yml (pid 4000)', node_file='node.yml',
                    taken=0.0, services=2, instances=len(greeting) + len(listen))


def log_records() -> list[dict]:
    """Records of two traces, at every level."""
    out = []
    for n, (level, msg, trace_id) in enumerate([
            ('DEBUG', 'connecting to tcp://127.0.0.1:40001', ''),
            ('INFO', 'Saying hi to Joe', 'a1' * 16),
            ('INFO', 'About to greet Joe', 'a1' * 16),
            ('WARNING', 'slow reply from Greeting.greet: 812 ms', 'b2' * 16),
            ('ERROR', 'Greeting.lookup raised KeyError: x', 'b2' * 16),
            ('CRITICAL', 'out of file descriptors', ''),
    ]):
        out.append({'kind': 'log', 'seq': n, 'ts': T0 + n * 0.25, 'level': level, 'service': 'Greeting',
                    'instance': 'greeting.%d' % (n % 3 + 1), 'pid': 4101 + n % 3, 'host': 'vm',
                    'logger': 'print', 'msg': msg, 'trace': trace_id, 'span': 's%d' % (n % 2)})
    return out


def trace_records(trace_id: str) -> list[dict]:
    """Web → Greeting → (event) Listen: spans and their logs."""
    def span(span_id, parent, type_, name, who, start, ms, status='ok'):
        return {'kind': 'span', 'ts': T0 + start, 'trace': trace_id, 'span': span_id, 'parent': parent,
                'type': type_, 'name': name, 'status': status, 'duration_ms': ms, 'service': who.split('.')[0],
                'instance': who, 'pid': 1, 'host': 'vm'}

    def line(span_id, who, at, msg, level='INFO'):
        return {'kind': 'log', 'ts': T0 + at, 'trace': trace_id, 'span': span_id, 'level': level,
                'service': who.split('.')[0], 'instance': who, 'pid': 1, 'host': 'vm', 'logger': 'print',
                'msg': msg}
    return sorted([
        span('w1', '', 'http', 'GET /greet', 'web.1', 0.000, 14.2, '200'),
        span('g1', 'w1', 'rpc', 'Greeting.greet', 'greeting.2', 0.003, 6.1),
        span('l1', 'g1', 'event', 'Listen.on_greeted', 'listen.3', 0.011, 1.2),
        line('w1', 'web.1', 0.001, 'About to greet joe'),
        line('g1', 'greeting.2', 0.004, 'Saying hi to joe'),
        line('l1', 'listen.3', 0.012, 'Somebody greeted joe'),
        line('w1', 'web.1', 0.014, 'GET /greet?name=joe 200', 'DEBUG'),
    ], key=lambda r: r['ts'])


class FixedSource:
    """A source (fannode.tui.source.Source, as TopSource) serving fixed data at once and
    recording what the app asked for."""

    def __init__(self, snapshot: Snapshot | None = None, records: list[dict] | None = None):
        self.snapshot = snapshot or fixed_snapshot()
        self.records = log_records() if records is None else records
        self.calls: list[tuple] = []
        self.deliver = None
        self.follows = 0

    def attach(self, deliver) -> None:
        self.deliver = deliver
        deliver('snapshot', self.snapshot)

    def stop(self) -> None:
        self.calls.append(('stop',))

    def scale(self, row, delta: int) -> None:
        self.calls.append(('scale', row.key, delta))
        self.deliver('status', Status('%s: 4 → %d processes' % (row.blocks[0], 4 + delta)))

    def restart(self, row) -> None:
        self.calls.append(('restart', row.key))
        self.deliver('status', Status('no node running for node.yml: scale and restart need `fannode up`', ok=False))

    def follow_logs(self, row, level: str | None = None) -> int:
        self.follows += 1
        self.calls.append(('follow', row.key if row else None, level))
        floor = LEVELS.index(level) if level else 0
        self.deliver('logs', LogBatch(self.follows, tuple(r for r in self.records
                                                          if LEVELS.index(r['level']) >= floor)))
        return self.follows

    def stop_logs(self) -> None:
        self.calls.append(('stop_logs',))

    def trace(self, trace_id: str) -> None:
        self.calls.append(('trace', trace_id))
        self.deliver('trace', TraceResult(trace_id, tuple(trace_records(trace_id))))


def run(app, test, size=SIZE):
    """Run `await test(pilot)` against `app` headless, in a fresh event loop."""
    async def main():
        async with app.run_test(size=size) as pilot:
            await test(pilot)
    asyncio.run(main())


async def until(pilot, predicate, timeout: float = 20.0, message: str = 'condition'):
    """Let the app run until `predicate()` is truthy; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %gs waiting for %s' % (timeout, message))
        await pilot.pause(0.05)


def table_rows(app) -> dict[str, list[str]]:
    """The main table as plain text: row key → cells."""
    table = app.main.table
    return {key: table.row_texts(key) for key in table.keys}


def cell(app, key: str, column: str) -> str:
    return app.main.table.text(key, column)


def column(table, name: str) -> list[str]:
    """One column of a RowTable, top to bottom."""
    return [table.text(key, name) for key in table.keys]


# -- a real node ---------------------------------------------------------------------

class Node(E2ENode):
    """tests/e2e's Node (`fannode up` in a temp dir, its control socket there too, every
    child killed by pid at the end) on a node.yml of Greeting × `greeting`, started."""

    def __init__(self, directory: Path, greeting: int = 2):
        super().__init__(directory)
        self.env.pop('TMUX', None)
        self.write(greeting_node(self.hub, greeting))
        self.up()

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.wait_for('cluster ready', timeout)
        self.remember_children()
