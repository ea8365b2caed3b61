"""`python -m bench.web [--duration S] [--rounds N] [--connections N] [--threads N] [--quick]
[--json]`: HTTP requests per second, with wrk against a hello endpoint on 127.0.0.1, for a
hand-tuned gevent.pywsgi + werkzeug app (the baseline) and for a fannode WebInterface,
with one process and with two processes sharing one port (SO_REUSEPORT).

Exits 0 whether targets are met or missed (it reports, it does not gate); 1 with a
one-line error when wrk is missing, something fails to start or answers wrongly; 130 on
Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import psutil
from rich.console import Console
from rich.table import Table

from bench.procs import BENCH, FANNODE, BenchError, Proc, Procs, free_port, wait_until
from bench.report import commas, mean, median, note_noisy, print_json, round_ratios, spread, table_console, verdict
from bench.runner import fail, quick_defaults, run_bench, spinner

TARGET_VS_BASELINE = 0.8   # fannode, 1 process, as a multiple of the baseline, 1 process
TARGET_TWO_VS_ONE = 1.4    # fannode, 2 processes, as a multiple of fannode, 1 process
START_TIMEOUT = 15.0
PID_PROBES = 200           # new connections to /pid to see which processes answer
PATH = '/hello'


@dataclass
class Target:
    key: str
    label: str
    port: int
    procs: list[Proc]
    access_log: bool = False  # fannode instances writing an access line per request

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d%s' % (self.port, PATH)


TARGETS = (  # key, label; the order is the order of the rows and of each round
    ('baseline_1', 'baseline, 1 process'),
    ('baseline_2', 'baseline, 2 processes'),
    ('fannode_1', 'fannode, 1 process'),
    ('fannode_1_no_log', 'fannode, 1 process, access_log: false'),
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
    def __init__(self, threads: int, connections: int, cpu: int | None):
        self.path = shutil.which('wrk')
        if self.path is None:
            raise BenchError('wrk not found: apt-get install wrk')
        self.threads, self.connections = threads, connections
        self.prefix: list[str] = []
        if cpu is not None:
            taskset = shutil.which('taskset')
            if taskset is None:
                raise BenchError('--wrk-cpu needs taskset (util-linux)')
            self.prefix = [taskset, '-c', str(cpu)]

    def run(self, target: Target, seconds: int, others: list[int]) -> Run:
        """Load `target` for `seconds`; watch the CPU of its processes, of wrk and of the
        rest of the machine (`others`: our other processes, not counted as "other")."""
        argv = [*self.prefix, self.path, '-t%d' % self.threads, '-c%d' % self.connections,
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


def access_lines(proc: Proc) -> int:
    with open(proc.log_path, 'rb') as f:
        return sum(1 for line in f if b'fannode.web.access' in line and b' GET /hello ' in line)


def start_targets(procs: Procs, say: Callable[[str], None]) -> tuple[list[Target], Proc]:
    """Start every process, then wait for each to be ready: log line, then HTTP."""
    url = 'hub://127.0.0.1:%d' % free_port()
    hub = procs.hub(url)
    config = str(BENCH / 'conf' / 'hello.yml')

    def baseline(name: str, port: int) -> Proc:
        return procs.start(name, [sys.executable, '-m', 'bench.web_baseline', str(port)])

    def instance(name: str, port: int, access_log: bool) -> Proc:
        # procs.instance() names every log instance.log; two instances need two logs
        return procs.start(name, [*FANNODE, 'instance', '--registry', url, '--config', config],
                           {'FANNODE_REGISTRY': url, 'WEB_PORT': str(port),
                            'ACCESS_LOG': 'true' if access_log else 'false'})

    ports = {key: free_port() for key, _ in TARGETS}
    labels = dict(TARGETS)
    p = ports['baseline_1']
    targets = [Target('baseline_1', labels['baseline_1'], p, [baseline('baseline-1', p)])]
    p = ports['baseline_2']
    targets.append(Target('baseline_2', labels['baseline_2'], p,
                          [baseline('baseline-2a', p), baseline('baseline-2b', p)]))
    hub.wait_for('hub listening', START_TIMEOUT)
    p = ports['fannode_1']
    targets.append(Target('fannode_1', labels['fannode_1'], p, [instance('fannode-1', p, True)], True))
    p = ports['fannode_1_no_log']
    targets.append(Target('fannode_1_no_log', labels['fannode_1_no_log'], p,
                          [instance('fannode-1-no-log', p, False)]))
    p = ports['fannode_2']
    targets.append(Target('fannode_2', labels['fannode_2'], p,
                          [instance('fannode-2a', p, True), instance('fannode-2b', p, True)], True))
    for target in targets:
        ready = 'ready' if target.key.startswith('baseline') else 'serving Hello over HTTP'
        for proc in target.procs:
            proc.wait_for(ready, START_TIMEOUT)
        wait_http(target)
        say('  ✓ %s on port %d, pid %s' % (target.key, target.port, ', '.join(str(p.pid) for p in target.procs)))
    return targets, hub


# -- the run --------------------------------------------------------------------------

def measure(args: argparse.Namespace, procs: Procs, say: Callable[[str], None],
            status: Callable[[str], None]) -> dict[str, Any]:
    wrk = Wrk(args.threads, args.connections, args.wrk_cpu)
    status('starting the servers')
    targets, hub = start_targets(procs, say)
    everyone = [os.getpid(), hub.pid] + [p.pid for t in targets for p in t.procs]

    def others(target: Target) -> list[int]:
        mine = {p.pid for p in target.procs}
        return [pid for pid in everyone if pid not in mine]

    status('checking that both processes of each pair answer')
    probes = {t.key: pid_probe(t) for t in targets if len(t.procs) > 1}
    for t in targets:
        if t.key in probes:
            say('  ✓ %s: %d new connections to /pid answered by %s' % (
                t.key, PID_PROBES, ', '.join('pid %d: %d' % kv for kv in sorted(probes[t.key].items()))))

    for t in targets:
        status('warming up %s (%ds)' % (t.key, args.warmup))
        wrk.run(t, args.warmup, others(t))
    log_before = {p.name: access_lines(p) for t in targets if t.access_log for p in t.procs}

    runs: dict[str, list[Run]] = {t.key: [] for t in targets}
    for i in range(args.rounds):
        for t in targets:
            status('round %d/%d: %s (%ds)' % (i + 1, args.rounds, t.key, args.duration))
            runs[t.key].append(wrk.run(t, args.duration, others(t)))
        say('  ✓ round %d/%d: %s' % (i + 1, args.rounds, ', '.join(
            '%s %s/s' % (k, commas(r[-1].per_second)) for k, r in runs.items())))
    log_after = {p.name: access_lines(p) for t in targets if t.access_log for p in t.procs}

    figures = summarize(runs)
    for t in targets:
        f = figures['rows'][t.key]
        f['pids'] = [p.pid for p in t.procs]
        if t.key in probes:
            f['pid_probe'] = {str(pid): n for pid, n in sorted(probes[t.key].items())}
        if t.access_log:
            f['access_log_lines'] = {str(p.pid): log_after[p.name] - log_before[p.name] for p in t.procs}
    both = {}
    for t in targets:
        if len(t.procs) < 2:
            continue
        f = figures['rows'][t.key]
        served_probe = len(probes[t.key]) == len(t.procs) and set(probes[t.key]) == set(f['pids'])
        busy = all(c >= 0.2 for c in f['server_cpu_each'])
        lines = f.get('access_log_lines')
        served_load = all(n > 0 for n in lines.values()) if lines else True
        both[t.key] = served_probe and busy and served_load
    figures['both_processes_served'] = both
    return figures


def summarize(runs: dict[str, list[Run]]) -> dict[str, Any]:
    """req/s over all rounds; p50 and p99 the median over the rounds; ratios on the totals
    and per round (for the spread)."""
    rows: dict[str, Any] = {}
    for key, rs in runs.items():
        requests, seconds = sum(r.requests for r in rs), sum(r.seconds for r in rs)
        rows[key] = {
            'requests': requests, 'seconds': round(seconds, 2), 'per_second': round(requests / seconds, 1),
            'p50_ms': round(median([r.p50_ms for r in rs]), 3), 'p99_ms': round(median([r.p99_ms for r in rs]), 3),
            'errors': sum(r.errors for r in rs),
            'server_cpu': round(mean([r.server_cpu for r in rs]), 2),
            'server_cpu_each': [round(mean(c), 2) for c in zip(*(r.server_cpu_each for r in rs))],
            'wrk_cpu': round(mean([r.wrk_cpu for r in rs]), 2),
            'other_cpu': round(mean([r.other_cpu for r in rs]), 2),
            'rounds': [asdict(r) for r in rs],
        }
    base = runs['baseline_1']
    for key, rs in runs.items():
        rows[key]['vs_baseline'] = round(rows[key]['per_second'] / rows['baseline_1']['per_second'], 3)
        rows[key]['round_vs_baseline'] = round_ratios(rs, base)
    one, two = rows['fannode_1'], rows['fannode_2']
    vs_one = two['per_second'] / one['per_second']
    targets = {
        'fannode_1_vs_baseline_1': {'ratio': one['vs_baseline'], 'target_min': TARGET_VS_BASELINE,
                                    'pass': one['vs_baseline'] >= TARGET_VS_BASELINE},
        'fannode_2_vs_fannode_1': {'ratio': round(vs_one, 3), 'target_min': TARGET_TWO_VS_ONE,
                                   'pass': vs_one >= TARGET_TWO_VS_ONE,
                                   'round_ratios': round_ratios(runs['fannode_2'], runs['fannode_1'])},
    }
    other = max(r['other_cpu'] for r in rows.values())
    return {'rows': rows, 'targets': targets, 'background_cpu': other,
            'baseline_2_vs_baseline_1': round(rows['baseline_2']['per_second'] / rows['baseline_1']['per_second'], 3)}


def _lat(ms: float) -> str:
    return '%.2f ms' % ms if ms < 100 else '%.0f ms' % ms


# -- output ---------------------------------------------------------------------------

def table(args: argparse.Namespace, figures: dict[str, Any]) -> Table:
    rows, targets = figures['rows'], figures['targets']
    pin = 'wrk pinned to CPU %d' % args.wrk_cpu if args.wrk_cpu is not None else 'nothing pinned'
    t = Table(title='fannode web benchmark: GET %s on 127.0.0.1' % PATH, caption=(
        'baseline: gevent.pywsgi + werkzeug (bench/web_baseline.py); fannode: a WebInterface, access log '
        'on (the default) unless the row says otherwise; 2 processes share one port (SO_REUSEPORT). '
        '%d CPUs, Python %s; wrk -t%d -c%d --latency, %ds per run in %d round(s) after %ds warm-up, %s; '
        'p50/p99: median over the rounds; CPU in cores; other processes used up to %.2f CPU meanwhile' % (
            os.cpu_count(), platform.python_version(), args.threads, args.connections, args.duration,
            args.rounds, args.warmup, pin, figures['background_cpu'])))
    for name, justify in (('server', 'left'), ('req/s', 'right'), ('p50', 'right'), ('p99', 'right'),
                          ('vs baseline', 'right'), ('per round', 'right'), ('CPU server / wrk', 'right'),
                          ('target', 'right'), ('', 'center')):
        t.add_column(name, justify=justify)

    for key, label in TARGETS:
        r = rows[key]
        target, mark = '', ''
        if key == 'baseline_1':
            target = 'anchor'
        elif key == 'fannode_1':
            target, mark = '≥ %.1f× baseline' % TARGET_VS_BASELINE, verdict(targets['fannode_1_vs_baseline_1']['pass'])
        elif key == 'fannode_2':
            ok = targets['fannode_2_vs_fannode_1']
            target, mark = '≥ %.1f× fannode 1 proc: %.2f×' % (TARGET_TWO_VS_ONE, ok['ratio']), verdict(ok['pass'])
        cpu = '%.2f / %.2f' % (r['server_cpu'], r['wrk_cpu'])
        if len(r['server_cpu_each']) > 1:
            cpu = '%s (%s) / %.2f' % (r['server_cpu'], ' + '.join('%.2f' % c for c in r['server_cpu_each']), r['wrk_cpu'])
        errors = ' (%d errors)' % r['errors'] if r['errors'] else ''
        t.add_row(label, commas(r['per_second']) + errors, _lat(r['p50_ms']), _lat(r['p99_ms']),
                  '%.2f×' % r['vs_baseline'], spread(r['round_vs_baseline']) if key != 'baseline_1' else '',
                  cpu, target, mark)
    return t


def served_lines(figures: dict[str, Any]) -> list[str]:
    lines = []
    for key, ok in figures['both_processes_served'].items():
        r = figures['rows'][key]
        probe = ', '.join('pid %s: %d' % kv for kv in r['pid_probe'].items())
        text = '%s: %s; /pid over %d new connections: %s; CPU under load %s' % (
            key, 'both processes served' if ok else '[red]NOT both processes served[/]', PID_PROBES, probe,
            ' + '.join('%.2f' % c for c in r['server_cpu_each']))
        if 'access_log_lines' in r:
            text += '; access-log lines during the rounds: %s' % ', '.join(
                'pid %s: %s' % (pid, commas(n)) for pid, n in r['access_log_lines'].items())
        lines.append(text)
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m bench.web', description='HTTP req/s with wrk: a hand-tuned gevent.pywsgi app '
        'against a fannode WebInterface, one and two processes. Exits 0 on a MISS; 1 if something fails.')
    parser.add_argument('--duration', type=int, metavar='S',
                        help='seconds of wrk load per target per round (default: 5, or 1 with --quick)')
    parser.add_argument('--rounds', type=int, metavar='N',
                        help='interleave the targets in N rounds, so a load change on the machine hits '
                             'all of them alike (default: 2, or 1 with --quick)')
    parser.add_argument('--connections', type=int, default=50, metavar='N',
                        help='wrk connections kept open (default: 50)')
    parser.add_argument('--threads', type=int, default=1, metavar='N', help='wrk threads (default: 1)')
    parser.add_argument('--wrk-cpu', type=int, metavar='CPU',
                        help='pin wrk to this CPU with taskset (default: not pinned)')
    parser.add_argument('--quick', action='store_true', help='short runs: a smoke test')
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')
    args = parser.parse_args(argv)
    quick_defaults(args, duration=(5, 1), rounds=(2, 1))
    if args.duration < 1 or args.rounds < 1 or args.connections < 1 or args.threads < 1:
        parser.error('--duration, --rounds, --connections and --threads must be positive')
    if args.connections < args.threads:
        parser.error('wrk needs at least one connection per thread')
    args.warmup = 1 if args.quick else 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which('wrk') is None:  # before any scratch dir: nothing to keep or clean up
        fail(Console(stderr=True), 'wrk not found: apt-get install wrk')
        return 1
    procs = Procs()

    def render(figures: dict[str, Any], err: Console) -> None:
        note_noisy(err, figures['background_cpu'], 'the figures are', used='used up to %.2f CPU during a run')
        if args.json:
            print_json({'python': platform.python_version(), 'cpus': os.cpu_count(), 'duration': args.duration,
                        'rounds': args.rounds, 'warmup': args.warmup, 'connections': args.connections,
                        'threads': args.threads, 'wrk_cpu': args.wrk_cpu, 'figures': figures})
            return
        out = table_console(160)
        out.print(table(args, figures))
        for line in served_lines(figures):
            out.print(line, highlight=False)

    return run_bench(procs, lambda say, status: measure(args, procs, say, status), render,
                     spinner('web benchmark'))


if __name__ == '__main__':
    sys.exit(main())
