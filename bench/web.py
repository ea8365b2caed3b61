"""The web case: HTTP requests per second, with wrk against GET /hello on 127.0.0.1, for a
hand-tuned gevent.pywsgi + werkzeug app (the anchor, bench/web_baseline.py) and for a
fannode WebInterface (bench/services/hello.py), with one process and with two processes
sharing one port (SO_REUSEPORT), in interleaved rounds. Without wrk the case is skipped.
fannode runs on its default server (fannode.web.lean) and, in one row, on gevent.pywsgi
(`server: gevent`): what the server alone changes. The server's CPU per request is a row
of its own: on a busy machine the rates follow the scheduler more than the code.
"""
from __future__ import annotations

import collections
import http.client
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import psutil

from bench.procs import BENCH, BROKER, FANNODE, SERVER, BenchError, Proc, Procs, Skip, free_port, wait_until
from bench.report import Row, at_least, at_most, compare
from bench.runner import Context

TARGET_VS_BASELINE = 1.0   # fannode as a multiple of the baseline with as many processes (issue 25)
TARGET_TWO_VS_ONE = 1.4    # fannode, 2 processes, as a multiple of fannode, 1 process
CONNECTIONS, THREADS = 50, 1  # wrk -c50 -t1
START_TIMEOUT = 15.0
PID_PROBES = 200           # new connections to /pid to see which processes answer
PATH = '/hello'


@dataclass
class Target:
    key: str
    label: str
    port: int
    procs: list[Proc]

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d%s' % (self.port, PATH)


TARGETS = (  # key, label; the order is the order of the rows and of each round
    ('baseline_1', 'baseline, 1 process'),
    ('baseline_2', 'baseline, 2 processes'),
    ('fannode_1', 'fannode, 1 process'),
    ('fannode_1_no_log', 'fannode, 1 process, access_log: false'),
    ('fannode_1_pywsgi', 'fannode, 1 process, server: gevent (gevent.pywsgi)'),
    ('fannode_2', 'fannode, 2 processes'),
)


@dataclass
class Run:
    """One wrk run, with the CPU used meanwhile (in cores: CPU seconds per second)."""
    requests: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu: float
    wrk_cpu: float
    other_cpu: float
    server_cpu_each: list[float] = field(default_factory=list)


# -- wrk ------------------------------------------------------------------------------

_UNITS_MS = {'us': 0.001, 'ms': 1.0, 's': 1000.0, 'm': 60000.0, 'h': 3600000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r'([\d.]+)(us|ms|s|m|h)', text)
    if not m:
        raise BenchError('cannot read the latency %r in the output of wrk' % text)
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests, seconds, req/s, p50 and p99 (ms) and errors from `wrk --latency` output."""
    total = re.search(r'^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)', out, re.M)
    rate = re.search(r'^Requests/sec:\s*([\d.]+)', out, re.M)
    p50 = re.search(r'^\s*50%\s+(\S+)', out, re.M)
    p99 = re.search(r'^\s*99%\s+(\S+)', out, re.M)
    if not (total and rate and p50 and p99):
        raise BenchError('cannot read the output of wrk: %s' % ' | '.join(out.split('\n')[-4:]).strip())
    errors = 0
    sockets = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    non_2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return {'requests': int(total.group(1)), 'seconds': _ms(total.group(2) + total.group(3)) / 1000,
            'per_second': float(rate.group(1)), 'p50_ms': _ms(p50.group(1)), 'p99_ms': _ms(p99.group(1)),
            'errors': errors}


class Wrk:
    def __init__(self, threads: int, connections: int):
        self.path = shutil.which('wrk')
        if self.path is None:
            raise Skip('wrk not found: apt-get install wrk')
        self.threads, self.connections = threads, connections

    def run(self, target: Target, seconds: int, others: list[int]) -> Run:
        """Load `target` for `seconds`; watch the CPU of its processes, of wrk and of the
        rest of the machine (`others`: our other processes, not counted as "other")."""
        argv = [self.path, '-t%d' % self.threads, '-c%d' % self.connections,
                '-d%ds' % seconds, '--latency', target.url]
        servers = [psutil.Process(p.pid) for p in target.procs]
        ours = [psutil.Process(pid) for pid in others]
        before = _cpu(servers), _cpu(ours), _children_cpu(), _busy(), time.monotonic()
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            raise BenchError('wrk did not finish %ds of load on %s within %ds' % (seconds, target.url, seconds + 30))
        after = _cpu(servers), _cpu(ours), _children_cpu(), _busy(), time.monotonic()
        if done.returncode != 0:
            raise BenchError('wrk failed on %s: %s' % (target.url, (done.stderr or done.stdout).strip()
                                                       .splitlines()[-1:] or 'exit %d' % done.returncode))
        for proc in target.procs:
            if proc.popen.poll() is not None:
                raise BenchError('%s exited with %s under load: %s' % (proc.name, proc.popen.returncode,
                                                                       proc.last_line()))
        figures = parse_wrk(done.stdout)
        if figures['requests'] == 0 or figures['errors'] >= figures['requests']:
            raise BenchError('%s answered no request successfully under wrk (%d errors)'
                             % (target.url, figures['errors']))
        wall = after[4] - before[4]
        each = [(a - b) / wall for a, b in zip(after[0], before[0])]
        wrk_cpu = (after[2] - before[2]) / wall  # wrk is the only child reaped meanwhile
        ours_cpu = sum(a - b for a, b in zip(after[1], before[1])) / wall
        other = (after[3] - before[3]) / wall - sum(each) - wrk_cpu - ours_cpu
        return Run(**figures, server_cpu=sum(each), wrk_cpu=wrk_cpu, other_cpu=max(0.0, other),
                   server_cpu_each=each)


def _cpu(procs: list[psutil.Process]) -> list[float]:
    out = []
    for p in procs:
        try:
            t = p.cpu_times()
            out.append(t.user + t.system)
        except psutil.NoSuchProcess:
            out.append(0.0)
    return out


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _busy() -> float:
    """CPU seconds the whole machine spent busy, loopback softirq included."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, 'irq', 0.0) + getattr(t, 'softirq', 0.0)


# -- processes ------------------------------------------------------------------------

QUICK_WARMUP = 50  # requests, each on a new connection (both processes of a pair get some)
# --quick measures these in its first round only: every row still runs, the primary pair twice
QUICK_ONCE = ('baseline_2', 'fannode_1_no_log', 'fannode_1_pywsgi', 'fannode_2')


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """One GET on a new connection (so two processes sharing the port may each answer)."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request('GET', path, headers={'Connection': 'close'})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_http(target: Target) -> None:
    """Poll the hello endpoint until it answers 200 'Hello', within the start deadline."""
    def answers() -> bool:
        for proc in target.procs:
            if proc.popen.poll() is not None:
                raise BenchError('%s exited with %s: %s' % (proc.name, proc.popen.returncode, proc.last_line()))
        try:
            status, body = http_get(target.port, PATH, timeout=1.0)
        except OSError:
            return False
        if status != 200 or body != b'Hello':
            raise BenchError('%s answered %d %r, expected 200 %r' % (target.url, status, body[:80], b'Hello'))
        return True
    wait_until(answers, START_TIMEOUT, '%s to answer' % target.url, interval=0.05)


def pid_probe(target: Target, count: int = PID_PROBES) -> dict[int, int]:
    """GET /pid `count` times, each on a new connection: how many each PID answered."""
    seen: collections.Counter[int] = collections.Counter()
    for _ in range(count):
        status, body = http_get(target.port, '/pid')
        if status != 200 or not body.isdigit():
            raise BenchError('%s/pid answered %d %r' % (target.url.rsplit('/', 1)[0], status, body[:80]))
        seen[int(body)] += 1
    return dict(seen)


def start_targets(procs: Procs, say: Callable[[str], None]) -> tuple[list[Target], Proc]:
    """Start every process, then wait for each to be ready: log line, then HTTP."""
    url = 'hub://127.0.0.1:%d' % free_port()
    hub = procs.hub(url, BROKER)
    config = str(BENCH / 'conf' / 'hello.yml')

    # Servers pinned alike (the second of two on the next CPU); wrk inherits the client's CPU.
    def baseline(name: str, port: int, index: int = 0) -> Proc:
        return procs.start(name, [sys.executable, '-m', 'bench.web_baseline', str(port)], cpu=SERVER, index=index)

    def instance(name: str, port: int, access_log: bool, index: int = 0, server: str = 'lean') -> Proc:
        # procs.instance() names every log instance.log; two instances need two logs
        return procs.start(name, [*FANNODE, 'instance', '--registry', url, '--config', config],
                           {'FANNODE_REGISTRY': url, 'WEB_PORT': str(port), 'FANNODE_HTTP_SERVER': server,
                            'ACCESS_LOG': 'true' if access_log else 'false'}, SERVER, index)

    ports = {key: free_port() for key, _ in TARGETS}
    labels = dict(TARGETS)
    p = ports['baseline_1']
    targets = [Target('baseline_1', labels['baseline_1'], p, [baseline('baseline-1', p)])]
    p = ports['baseline_2']
    targets.append(Target('baseline_2', labels['baseline_2'], p,
                          [baseline('baseline-2a', p), baseline('baseline-2b', p, 1)]))
    hub.wait_for('hub listening', START_TIMEOUT)
    p = ports['fannode_1']
    targets.append(Target('fannode_1', labels['fannode_1'], p, [instance('fannode-1', p, True)]))
    p = ports['fannode_1_no_log']
    targets.append(Target('fannode_1_no_log', labels['fannode_1_no_log'], p,
                          [instance('fannode-1-no-log', p, False)]))
    p = ports['fannode_1_pywsgi']
    targets.append(Target('fannode_1_pywsgi', labels['fannode_1_pywsgi'], p,
                          [instance('fannode-1-pywsgi', p, True, server='gevent')]))
    p = ports['fannode_2']
    targets.append(Target('fannode_2', labels['fannode_2'], p,
                          [instance('fannode-2a', p, True), instance('fannode-2b', p, True, 1)]))
    for target in targets:
        ready = 'ready' if target.key.startswith('baseline') else 'serving Hello over HTTP'
        for proc in target.procs:
            proc.wait_for(ready, START_TIMEOUT)
        wait_http(target)
        say('  ✓ %s on port %d, pid %s' % (target.key, target.port, ', '.join(str(p.pid) for p in target.procs)))
    return targets, hub


# -- the run --------------------------------------------------------------------------

def run(ctx: Context) -> list[Row]:
    ctx.missing('wrk')
    wrk = Wrk(THREADS, CONNECTIONS)
    ctx.step('starting the servers')
    targets, hub = start_targets(ctx.procs, ctx.say)
    everyone = [os.getpid(), hub.pid] + [p.pid for t in targets for p in t.procs]

    ctx.step('checking that both processes of each pair answer')
    for t in targets:
        if len(t.procs) > 1:
            seen = pid_probe(t)
            if set(seen) != {p.pid for p in t.procs}:
                raise BenchError('%s: %d new connections to /pid were answered by %s, not by both of %s' % (
                    t.key, PID_PROBES, sorted(seen), [p.pid for p in t.procs]))
            ctx.details['%s_pid_probe' % t.key] = {str(pid): n for pid, n in sorted(seen.items())}

    duration, warmup = ctx.pick(5, 1), ctx.pick(2, 1)
    runs: dict[str, list[Run]] = {t.key: [] for t in targets}

    def measure(t: Target) -> Callable[[bool], float]:
        others = [pid for pid in everyone if pid not in {p.pid for p in t.procs}]

        def one(w: bool) -> float:
            if w and ctx.quick:  # wrk's floor is 1 s a run: warm up with plain requests instead
                for _ in range(QUICK_WARMUP):
                    http_get(t.port, PATH)
                return 0.0
            r = wrk.run(t, warmup if w else duration, others)
            if not w:
                runs[t.key].append(r)
            return r.per_second
        return one

    s = ctx.rounds({t.key: measure(t) for t in targets}, once=QUICK_ONCE)
    ctx.details['wrk'] = '-t%d -c%d --latency, %d s per run' % (THREADS, CONNECTIONS, duration)
    ctx.details['runs'] = {key: [asdict(r) for r in rs] for key, rs in runs.items()}

    anchor = 'gevent.pywsgi + werkzeug, %d process%s'

    def cpu_us(key: str) -> list[float]:
        # The server's CPU per request: what a busy neighbour moves least (the rates move
        # with where the scheduler puts wrk, the hub and the neighbour).
        return [r.server_cpu / r.per_second * 1e6 for r in runs[key]]
    return [
        compare('one', 'HTTP, 1 process', 'req/s', s['fannode_1'], anchor % (1, ''), s['baseline_1'],
                at_least(TARGET_VS_BASELINE)),
        compare('one_no_log', 'HTTP, 1 process, access_log: false', 'req/s', s['fannode_1_no_log'],
                anchor % (1, ''), s['baseline_1']),
        compare('one_pywsgi', 'HTTP, 1 process, server: gevent', 'req/s', s['fannode_1_pywsgi'],
                anchor % (1, ''), s['baseline_1']),
        compare('cpu_one', 'HTTP, 1 process: server CPU per request', 'µs', cpu_us('fannode_1'),
                anchor % (1, ''), cpu_us('baseline_1'), at_most(1.0, 'ratio')),
        compare('two', 'HTTP, 2 processes', 'req/s', s['fannode_2'], anchor % (2, 'es'), s['baseline_2'],
                at_least(TARGET_VS_BASELINE)),
        compare('two_vs_one', 'HTTP, 2 processes', 'req/s', s['fannode_2'], 'fannode, 1 process', s['fannode_1'],
                at_least(TARGET_TWO_VS_ONE)),
    ]
