"""bench.top: what `fannode top` costs while it watches many instances at 1 Hz.

The `top` case of `python -m bench` (200 instances, 20 with --quick): a hub and one
stand-in process (bench/standin.py) that registers the instances and answers each one's
`get_metrics` and `ping` on an endpoint of its own, with figures that move every second
(as under load, so cells are redrawn). `--real` runs a node (`fannode up`) of real Greeting
instances and a client calling them instead. Then `fannode top` runs twice, each time for
a measured stretch once it shows every instance:

- headless: the data source and the Textual app in a process of their own
  (`App.run(headless=True)`, 160×45), as the tests drive it;
- in tmux: `fannode top` in a 160×45 pane of a private tmux server, drawing to a real
  terminal (skipped without tmux).

The figure is the top process's CPU time (user + system, every thread: the app's loop,
the source's gevent thread, its node worker) over the wall time, in % of one core.
Target: under 10 %.

    python -m bench.top                              # 200 stand-in instances, 20 s each
    python -m bench.top --real --instances 50 --seconds 10
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import psutil

from bench.procs import FANNODE, ROOT, BenchError, free_port, side_by_side, wait_until
from bench.report import Row, at_most, compare, skipped

if TYPE_CHECKING:
    from bench.runner import Context

TARGET_CPU_PCT = 10.0
SIZE = (160, 45)

LOAD = '''
import time
import fannode
greeting = fannode.proxy('Greeting', timeout=5)
while True:
    try:
        greeting.greet(name='bench')
    except fannode.FannodeError:
        pass
    time.sleep(0.01)
'''


def node_yml(hub: str, instances: int) -> str:
    return f'''registry: {hub}
env:
  PYTHONPATH: {ROOT / 'services'}
instances:
  greeting:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
    numprocesses: {instances}
'''


def listed(hub: str) -> int:
    """How many Greeting instances the hub lists (0 when it does not answer)."""
    from bench.node import HubProbe
    probe = HubProbe(hub)
    try:
        return len(probe.pids(timeout=2.0) or [])
    finally:
        probe.close()


def cpu_percent(pid: int, seconds: float) -> float:
    """CPU of process `pid` (all its threads) over the next `seconds`, in % of one core."""
    proc = psutil.Process(pid)
    before, start = proc.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after, wall = proc.cpu_times(), time.monotonic() - start
    used = (after.user - before.user) + (after.system - before.system)
    return 100.0 * used / wall


class Cluster:
    """The node and the client calling it, in a temp dir; stopped by pid."""

    def __init__(self, instances: int):
        self.dir = Path(tempfile.mkdtemp(prefix='bench-top-'))
        self.instances = instances
        self.hub = 'hub://127.0.0.1:%d' % free_port()
        self.file = self.dir / 'node.yml'
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(self.dir),
                        XDG_STATE_HOME=str(self.dir / 'state'), FANNODE_REGISTRY=self.hub)
        for key in ('FANNODE_EVENTS', 'TMUX'):
            self.env.pop(key, None)
        self.procs: list[subprocess.Popen] = []

    def spawn(self, argv: list[str], name: str) -> subprocess.Popen:
        log = open(self.dir / (name + '.log'), 'w')
        proc = subprocess.Popen(argv, cwd=self.dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(proc)
        return proc

    def start(self) -> float:
        self.file.write_text(node_yml(self.hub, self.instances))
        started = time.monotonic()
        self.node = self.spawn([*FANNODE, 'up', '--quiet', '--file', str(self.file)], 'up')
        wait_until(lambda: self.node.poll() is None and listed(self.hub) == self.instances or self.node.poll(),
                   timeout=30 + 3 * self.instances, what='%d instances listed' % self.instances, interval=0.5)
        if self.node.poll() is not None:
            raise BenchError('fannode up exited:\n' + (self.dir / 'up.log').read_text()[-2000:])
        self.spawn([sys.executable, '-c', LOAD], 'load')
        return time.monotonic() - started

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT if proc is getattr(self, 'node', None) else signal.SIGKILL)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Standin(Cluster):
    """A hub and one process standing in for `instances` instances (bench/standin.py):
    no node, so top has no node's ps to ask."""

    def start(self) -> float:
        self.file.write_text('registry: %s\ninstances: {}\n' % self.hub)
        started = time.monotonic()
        self.spawn([*FANNODE, 'hub', '--registry', self.hub, '--no-journal'], 'hub')
        standin = self.spawn([sys.executable, '-m', 'bench.standin', '--registry', self.hub,
                              '--instances', str(self.instances), '--serve'], 'standin')
        wait_until(lambda: standin.poll() is not None or listed(self.hub) == self.instances,
                   timeout=30 + self.instances / 20, what='%d instances listed' % self.instances, interval=0.2)
        if standin.poll() is not None:
            raise BenchError('the stand-in exited:\n' + (self.dir / 'standin.log').read_text()[-2000:])
        return time.monotonic() - started


# -- top, headless -------------------------------------------------------------------

def headless_child(registry: str, node_file: str, instances: int, ready: str) -> None:
    """`python -m bench.top --child ...`: top's source and app, headless, until killed;
    writes `ready` once a snapshot lists every instance."""
    import logging
    logging.getLogger().addHandler(logging.NullHandler())

    from fannode.tui.app import TopApp
    from fannode.tui.rows import Snapshot
    from fannode.tui.source import TopSource

    class BenchApp(TopApp):
        def deliver(self, kind: str, payload: Any) -> None:
            if isinstance(payload, Snapshot) and payload.instances >= instances and not os.path.exists(ready):
                Path(ready).write_text('%d\n' % payload.instances)
            super().deliver(kind, payload)

    source = TopSource(registry, node_file, 1.0)
    source.start()
    try:
        BenchApp(source).run(headless=True, size=SIZE)
    finally:
        source.stop()


def measure_headless(cluster: Cluster, seconds: float, rounds: int = 1, settle: float = 2.0,
                     quiet: Callable[[], None] = lambda: None) -> list[float]:
    """The headless top's CPU over `rounds` stretches of `seconds`, in % of one core."""
    ready = cluster.dir / 'headless.ready'
    child = cluster.spawn([sys.executable, '-m', 'bench.top', '--child', '--registry', cluster.hub,
                           '--file', str(cluster.file), '--instances', str(cluster.instances),
                           '--ready', str(ready)], 'headless')
    try:
        wait_until(lambda: ready.exists() or child.poll() is not None, 60, 'headless top to show every instance',
                   interval=0.2)
        if child.poll() is not None:
            raise BenchError('headless top exited:\n' + (cluster.dir / 'headless.log').read_text()[-2000:])
        quiet()
        time.sleep(settle)  # the first rows drawn; then the steady state
        return [cpu_percent(child.pid, seconds) for _ in range(rounds)]
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


# -- top, in tmux ----------------------------------------------------------------------

def measure_tmux(cluster: Cluster, seconds: float, rounds: int = 1, settle: float = 2.0,
                 quiet: Callable[[], None] = lambda: None) -> list[float] | None:
    """`fannode top` in a tmux pane: its CPU over `rounds` stretches; None without tmux."""
    if shutil.which('tmux') is None:
        return None
    env = dict(cluster.env, TMUX_TMPDIR=str(cluster.dir), TERM='xterm-256color')

    def tmux(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(['tmux', '-L', 'bench-top', *args], env=env, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)
    try:
        tmux('new-session', '-d', '-s', 'top', '-x', str(SIZE[0]), '-y', str(SIZE[1]), '-c', str(cluster.dir),
             *FANNODE, 'top', '--file', str(cluster.file))
        count = '%d/%d' % (cluster.instances, cluster.instances)
        wait_until(lambda: count in tmux('capture-pane', '-p', '-t', 'top').stdout, 60,
                   'top in tmux to show %s' % count, interval=0.2)
        pid = int(tmux('display-message', '-p', '-t', 'top', '#{pane_pid}').stdout.strip())
        quiet()
        time.sleep(settle)
        return [cpu_percent(pid, seconds) for _ in range(rounds)]
    finally:
        pane = tmux('display-message', '-p', '-t', 'top', '#{pane_pid}').stdout.strip()
        tmux('kill-server')
        if pane.isdigit():
            try:
                psutil.Process(int(pane)).kill()
            except psutil.NoSuchProcess:
                pass


# -- the case ----------------------------------------------------------------------------

def run(instances: int = 200, seconds: float = 20.0, real: bool = False, rounds: int = 1,
        settle: float = 2.0, together: bool = False, quiet: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """The figures: {'instances', 'real', 'up_s', 'headless_cpu_pct': [...], 'tmux_cpu_pct':
    [...] (None without tmux), 'target_cpu_pct', 'ok'}. `together` (--quick): the headless
    top and the one in tmux at the same time, each its own process's CPU. `quiet`: called
    once top shows every instance, before its CPU is measured."""
    cluster = Cluster(instances) if real else Standin(instances)
    try:
        up = cluster.start()
        if together:
            got: dict[str, Any] = {}
            side_by_side([lambda: got.update(headless=measure_headless(cluster, seconds, rounds, settle, quiet)),
                          lambda: got.update(tmux=measure_tmux(cluster, seconds, rounds, settle, quiet))])
            headless, in_tmux = got['headless'], got['tmux']
        else:
            headless = measure_headless(cluster, seconds, rounds, settle, quiet)
            in_tmux = measure_tmux(cluster, seconds, rounds, settle, quiet)
    finally:
        cluster.stop()
    worst = max(headless + (in_tmux or []))
    return {'instances': instances, 'real': real, 'up_s': round(up, 1), 'seconds': seconds,
            'headless_cpu_pct': [round(x, 2) for x in headless],
            'tmux_cpu_pct': None if in_tmux is None else [round(x, 2) for x in in_tmux],
            'target_cpu_pct': TARGET_CPU_PCT, 'ok': worst < TARGET_CPU_PCT}


def case(ctx: Context) -> list[Row]:
    """The `top` case of `python -m bench`: stand-in instances (one process answering for
    them all, see bench/standin.py), 3 stretches of 5 s each way (1 of 2 s with --quick,
    both ways at once)."""
    instances, seconds, rounds = ctx.pick(200, 20), ctx.pick(5.0, 2.0), ctx.pick(3, 1)
    what = 'fannode top at 1 Hz, %d instances (stand-in), %s'
    ctx.step('fannode top watching %d stand-in instances' % instances)
    try:
        f = run(instances, seconds, rounds=rounds, settle=ctx.pick(2.0, 0.5), together=ctx.quick, quiet=ctx.quiet)
    except BenchError as e:
        why = str(e).splitlines()[0]
        return [skipped('cpu.%s' % way, what % (instances, way), '% of a core', why) for way in ('headless', 'tmux')]
    ctx.details['top'] = f
    ctx.say('  ✓ top with %d instances: headless %s, tmux %s %% of a core' % (
        instances, f['headless_cpu_pct'], f['tmux_cpu_pct'] or 'skipped'))
    rows = [compare('cpu.headless', what % (instances, 'headless'), '% of a core', f['headless_cpu_pct'],
                    target=at_most(TARGET_CPU_PCT))]
    if f['tmux_cpu_pct'] is None:
        rows.append(skipped('cpu.tmux', what % (instances, 'in tmux'), '% of a core', 'no tmux'))
    else:
        rows.append(compare('cpu.tmux', what % (instances, 'in tmux'), '% of a core', f['tmux_cpu_pct'],
                            target=at_most(TARGET_CPU_PCT)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench.top', description=__doc__.split('\n\n')[0])
    parser.add_argument('--instances', type=int, default=200)
    parser.add_argument('--seconds', type=float, default=20.0, help='each measured stretch')
    parser.add_argument('--real', action='store_true', help='a node of real Greeting instances, not the stand-in')
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--registry', help=argparse.SUPPRESS)
    parser.add_argument('--file', help=argparse.SUPPRESS)
    parser.add_argument('--ready', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        headless_child(args.registry, args.file, args.instances, args.ready)
        return 0
    kind = 'a node of %d instances' if args.real else '%d stand-in instances'
    print('bench.top: %s, top at 1 Hz, %gs measured each way…' % (kind % args.instances, args.seconds), flush=True)
    try:
        figures = run(args.instances, args.seconds, args.real)
    except BenchError as e:
        print('bench.top: %s' % e, file=sys.stderr)
        return 1
    print('  %d instances listed in %.1fs' % (figures['instances'], figures['up_s']))
    print('  top headless (source + app, 160x45):  %5.2f %% of one core' % figures['headless_cpu_pct'][0])
    if figures['tmux_cpu_pct'] is None:
        print('  top in tmux: skipped (no tmux)')
    else:
        print('  top in tmux (160x45, real terminal):  %5.2f %% of one core' % figures['tmux_cpu_pct'][0])
    print('  target: < %g %%  %s' % (TARGET_CPU_PCT, 'ok' if figures['ok'] else 'MISSED'))
    return 0 if figures['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
