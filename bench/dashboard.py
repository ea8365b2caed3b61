"""bench.dashboard: what the node's dashboard costs the node (`fannode up` in a terminal:
the node in a thread, the Textual app in the main thread of the same process).

A node runs N Greeting instances (200 by default) beside its hub, in a 160×45 pane of a
private tmux server, so the dashboard draws to a real terminal at 1 Hz while a small
client keeps calling Greeting (rates change, cells are redrawn every second).

1. The node process's CPU (user + system, every thread: circus, the node's loops, the
   dashboard and its data source) over `--seconds`, in % of one core. Target: < 10 %.
2. Then a `chatter` block is added by editing node.yml (applied live): one process
   printing 5,000 lines/s, which the dashboard's log pane follows. While they flow, one
   Greeting instance at a time is killed with SIGKILL, and the time until the hub lists
   N again without it is taken (as bench.node does). Target: ≤ 1 s each.

    python -m bench.dashboard                       # 200 instances, 20 s
    python -m bench.dashboard --instances 20 --seconds 10
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import psutil

from bench.node import Children, HubProbe, wait_listed
from bench.procs import FANNODE, BenchError, wait_until
from bench.report import Row, at_most, compare, skipped
from bench.runner import Context
from bench.top import LOAD, SIZE, Cluster, cpu_percent, node_yml

TARGET_CPU_PCT = 10.0
TARGET_REPLACED_S = 1.0
CHATTER = '''
import sys, time
rate, n, t0 = %d, 0, time.monotonic()
while True:
    n += 1
    sys.stdout.write('chatter line %%d: a log line of about the usual length, to be shown by the dashboard\\n' %% n)
    if n %% 50 == 0:
        sys.stdout.flush()
        ahead = n / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    if n %% 5000 == 0:  # how many it could write: a node that reads slowly blocks it
        with open('chatter.count', 'w') as f:
            f.write('%%d %%f' %% (n, time.monotonic()))
'''


class Pane:
    def __init__(self, cluster: Cluster):
        self.env = dict(cluster.env, TMUX_TMPDIR=str(cluster.dir), TERM='xterm-256color')
        self.env.pop('CI', None)
        self.cluster = cluster

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(['tmux', '-L', 'bench-dashboard', *args], env=self.env, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    def screen(self) -> str:
        return self('capture-pane', '-p', '-t', 'up').stdout

    def keys(self, *keys: str) -> None:
        self('send-keys', '-t', 'up', *keys)

    def pid(self) -> int:
        return int(self('display-message', '-p', '-t', 'up', '#{pane_pid}').stdout.strip())


def poll(predicate: Callable[[], bool], seconds: float) -> bool:
    """Whether `predicate` comes true within `seconds`, asked every 0.1 s."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def chatter_block(rate: int) -> str:
    import json
    import shlex
    command = shlex.join([sys.executable, '-c', CHATTER % rate])
    return '  chatter:\n    command: %s\n' % json.dumps(command)  # a JSON string is a YAML double-quoted one


def run(instances: int, seconds: float, rate: int, kills: int, settle: float = 2.0,
        flowing: float = 5.0, quiet: Callable[[], None] = lambda: None,
        step: Callable[[str], None] = lambda text: None,
        later: Callable[[Callable[[], None]], None] = lambda stop: stop()) -> dict[str, Any]:
    """`settle`: the wait before each CPU window; `flowing`: the window with lines flowing;
    `quiet`: called once the node is up, before anything is measured (the runner's wait
    for the last case's processes to stop); `step`: told each step, for the progress;
    `later`: given the stop of the node and the rest, to run it (at once by default)."""
    if shutil.which('tmux') is None:
        raise BenchError('tmux is not installed: the dashboard needs a terminal')
    cluster = Cluster(instances)
    pane = Pane(cluster)
    children = Children()
    node_pid = 0
    try:
        cluster.file.write_text(node_yml(cluster.hub, instances))
        started = time.monotonic()
        pane('new-session', '-d', '-s', 'up', '-x', str(SIZE[0]), '-y', str(SIZE[1]), '-c', str(cluster.dir),
             *FANNODE, 'up')
        node_pid = pane.pid()
        count = '%d/%d' % (instances, instances)
        wait_until(lambda: count in pane.screen(), 30 + 3 * instances, 'the dashboard to show %s' % count, 0.2)
        up = time.monotonic() - started
        children.add_tree(node_pid)
        cluster.spawn([sys.executable, '-c', LOAD], 'load')
        quiet()
        step('the node and its dashboard at 1 Hz')
        time.sleep(settle)
        idle_cpu = cpu_percent(node_pid, seconds)

        step('a chatter block, its log pane open')
        with open(cluster.file, 'a') as f:
            f.write(chatter_block(rate))
        wait_until(lambda: 'chatter.1 started' in pane.screen(), 30, 'the chatter block to start', 0.2)
        for _ in range(30):  # the log pane of chatter.1, the last row once the table has it
            pane.keys('End', 'l')
            if poll(lambda: 'logs of chatter' in pane.screen(), 0.5):
                break
            pane.keys('Escape')
            time.sleep(0.5)
        else:
            raise BenchError('no chatter row to open the log pane of:\n' + pane.screen())
        counted = cluster.dir / 'chatter.count'
        time.sleep(settle)
        wait_until(counted.exists, 30, 'the chatter block to write its count', 0.1)  # once a second
        first = counted.read_text().split()
        step('the node with %d lines/s in the log pane' % rate)
        flowing_cpu = cpu_percent(node_pid, flowing)
        probe = HubProbe(cluster.hub)
        replaced = []
        try:
            killed: list[int] = []
            for i in range(kills):
                step('kill -9, %d/%d' % (i + 1, kills))
                before = probe.pids() or []
                children.add(before)
                victim = min((p for p in before if p not in killed), key=lambda p: children.procs[p].create_time())
                t0 = time.monotonic()
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
                replaced.append(wait_listed(probe, t0, lambda pids, _: len(pids) == instances and victim not in pids,
                                            'pid %d to be replaced' % victim, children=children, timeout=30))
                time.sleep(settle / 2)
        finally:
            probe.close()
        last = counted.read_text().split()
        span = float(last[1]) - float(first[1])  # no new count yet in a short run (--quick): 0
        written = (int(last[0]) - int(first[0])) / span if span > 0 else 0.0
        if 'logs of chatter' not in pane.screen():
            raise BenchError('the log pane closed:\n' + pane.screen())
        return {'instances': instances, 'node_up_s': round(up, 1), 'seconds': seconds,
                'node_cpu_pct': round(idle_cpu, 2), 'target_cpu_pct': TARGET_CPU_PCT,
                'lines_per_s': rate, 'lines_per_s_written': round(written), 'node_cpu_pct_lines_flowing': round(flowing_cpu, 1),
                'replaced_s': [round(r, 3) for r in replaced], 'replaced_median_s': round(statistics.median(replaced), 3),
                'target_replaced_s': TARGET_REPLACED_S,
                'ok': idle_cpu < TARGET_CPU_PCT and max(replaced) <= TARGET_REPLACED_S}
    finally:
        later(lambda: stop(node_pid, pane, children, cluster))


def stop(node_pid: int, pane: Pane, children: Children, cluster: Cluster) -> None:
    """The node (if it started), tmux, whatever the node left, the load and the hub."""
    if node_pid:
        try:
            os.kill(node_pid, signal.SIGTERM)  # the graceful stop, as SIGTERM is without the dashboard
            psutil.Process(node_pid).wait(60)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.TimeoutExpired):
            pass
    pane('kill-server')
    children.kill_left()
    cluster.stop()


def case(ctx: Context) -> list[Row]:
    """The `dashboard` case of `python -m bench`: the same measurement, as table rows."""
    instances, seconds, kills = ctx.pick(200, 10), ctx.pick(20.0, 1.5), ctx.pick(5, 2)
    ctx.step('fannode up with the dashboard, %d instances, in tmux' % instances)
    try:
        f = run(instances, seconds, 5000, kills, ctx.pick(2.0, 0.5), ctx.pick(5.0, 1.0), ctx.quiet, ctx.step,
                ctx.later)  # the node stops while the next case starts
    except BenchError as e:
        why = str(e).splitlines()[0]
        return [skipped('cpu', 'node + dashboard at 1 Hz, %d instances' % instances, '% of a core', why),
                skipped('replaced', 'kill -9 → replaced, 5,000 log lines/s in the log pane', 's', why)]
    ctx.say('  ✓ node + dashboard %.1f %% of a core; replaced in %s s' % (
        f['node_cpu_pct'], ', '.join('%.2f' % r for r in f['replaced_s'])))
    return [compare('cpu', 'node + dashboard at 1 Hz, %d instances' % instances, '% of a core',
                    [f['node_cpu_pct']], target=at_most(TARGET_CPU_PCT)),
            compare('replaced', 'kill -9 → replaced, 5,000 log lines/s in the log pane', 's',
                    f['replaced_s'], target=at_most(TARGET_REPLACED_S))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench.dashboard', description=__doc__.split('\n\n')[0])
    parser.add_argument('--instances', type=int, default=200)
    parser.add_argument('--seconds', type=float, default=20.0, help='the CPU measurement')
    parser.add_argument('--rate', type=int, default=5000, help='log lines/s of the chatter block')
    parser.add_argument('--kills', type=int, default=5)
    args = parser.parse_args(argv)
    print('bench.dashboard: fannode up in tmux with %d instances, %gs measured…' % (args.instances, args.seconds),
          flush=True)
    try:
        f = run(args.instances, args.seconds, args.rate, args.kills)
    except BenchError as e:
        print('bench.dashboard: %s' % e, file=sys.stderr)
        return 1
    print('  node up with %d instances, the dashboard showing them, in %.1fs' % (f['instances'], f['node_up_s']))
    print('  node + dashboard at 1 Hz:  %5.2f %% of one core (target < %g %%)' % (f['node_cpu_pct'], TARGET_CPU_PCT))
    print('  with %d log lines/s asked (%d written) in the log pane: node %5.1f %% of one core' % (
        f['lines_per_s'], f['lines_per_s_written'], f['node_cpu_pct_lines_flowing']))
    print('  kill -9 → replaced and listed: %s s (median %.3f; target ≤ %g s)' % (
        ', '.join('%.3f' % r for r in f['replaced_s']), f['replaced_median_s'], TARGET_REPLACED_S))
    print('  %s' % ('ok' if f['ok'] else 'MISSED'))
    return 0 if f['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
