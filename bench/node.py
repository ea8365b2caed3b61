"""`python -m bench.node [--quick] [--kills N] [--json]`: the node supervisor, `fannode up`,
timed from the outside through discovery: how long until 10 instances are listed after
start, until a killed one is replaced, until an edit of node.yml is applied; the node's
RSS and CPU when idle; and a clean stop on SIGINT. Beside it, the anchor: a hub and 10
`fannode instance` processes started by hand.

Exits 0 whether targets are met or missed (it reports, it does not gate); 1 with a
one-line error when something fails to start, the node exits, or it does not stop
cleanly on SIGINT (exit 0 within 15 s, no child left); 130 on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import psutil
import zmq
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import report
from bench.procs import BENCH, FANNODE, BenchError, Proc, Procs, free_port, wait_until
from bench.report import median, note_noisy, print_json, table_console, verdict
from bench.runner import quick_defaults, run_bench, spinner

TARGET_UP_S = 3.0         # fannode up → 10 instances listed
TARGET_REPLACE_S = 1.0    # kill -9 → 10 listed again, without the dead one (median)
TARGET_SCALE_S = 2.0      # node.yml saved → the new count listed
TARGET_RSS_MIB = 60.0     # the node process alone, idle
START_TIMEOUT = 15.0      # for each wait on discovery
STOP_TIMEOUT = 15.0       # SIGINT → the node has exited
COUNT, MORE, FEWER = 10, 15, 5
SERVICE = 'Greeting'
MiB = 1024 * 1024
# The instance as node.yml runs it: the fannode script next to our Python, as the node does
INSTANCE = [str(Path(sys.executable).parent / 'fannode'), 'instance', '--config',
            str(BENCH / 'conf' / 'greeting.yml')]


# -- discovery ------------------------------------------------------------------------

class HubProbe:
    """Asks the hub which instances it lists: one blocking DEALER, one request at a time,
    the way the node's own readiness probe does (fannode/node/ready.py). No gevent, and
    no CLI start per poll, so a poll costs about a millisecond."""

    def __init__(self, url: str):
        from fannode.zmqrpc import protocol
        from fannode.zmqrpc.link import hub_endpoint
        self.protocol = protocol
        self.endpoint = hub_endpoint(url)
        self.context = zmq.Context()
        self.socket: zmq.Socket | None = None
        self.ids = itertools.count(1)
        self._reset()  # connect now: the request waits in the socket until the hub listens

    def _reset(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RECONNECT_IVL, 10)  # see a hub that just started within 10 ms
        self.socket.connect(self.endpoint)

    def pids(self, timeout: float = 1.0) -> list[int] | None:
        """PIDs of the listed Greeting instances; None when the hub does not answer."""
        p = self.protocol
        msg = p.Message(p.REQ, next(self.ids), 'hub.services', {}, deadline_ms=int(timeout * 1000))
        self.socket.send(msg.encode())
        deadline = time.monotonic() + timeout
        while self.socket.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            reply = p.decode(self.socket.recv())
            if reply.id == msg.id:
                if reply.type != p.REP:
                    raise BenchError('the hub refused services: %r' % (reply.body,))
                return sorted(i.get('pid') for i in reply.body.get(SERVICE, []))
        self._reset()  # a late reply must not answer the next request
        return None

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


class Children:
    """Every process the node was seen to run, kept as psutil handles (which know their
    start time, so a reused PID is never taken for one of them): to check that none
    outlives the node, and to kill by PID whatever does."""

    def __init__(self) -> None:
        self.procs: dict[int, psutil.Process] = {}

    def add(self, pids: list[int]) -> None:
        for pid in pids:
            if pid and pid not in self.procs:
                try:
                    self.procs[pid] = psutil.Process(pid)
                except psutil.NoSuchProcess:
                    pass

    def add_tree(self, pid: int) -> None:
        try:
            self.add([p.pid for p in psutil.Process(pid).children(recursive=True)])
        except psutil.NoSuchProcess:
            pass

    def alive(self) -> list[int]:
        left = []
        for pid, p in self.procs.items():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    left.append(pid)
            except psutil.NoSuchProcess:
                pass
        return left

    def kill_left(self) -> list[int]:
        left = self.alive()
        for pid in left:
            try:
                self.procs[pid].kill()
            except psutil.NoSuchProcess:
                pass
        return left


def wait_listed(probe: HubProbe, t0: float, done: Callable[[list[int], float], bool], what: str,
                node: Proc | None = None, children: Children | None = None) -> float:
    """Poll discovery every 20 ms until `done(pids, seconds since t0)`; the seconds.
    BenchError if the node exits meanwhile or START_TIMEOUT passes."""
    last: list[int] | None = None

    def check() -> float:
        nonlocal last
        if node is not None and node.popen.poll() is not None:
            raise BenchError('fannode up exited with %s while waiting for %s: %s'
                             % (node.popen.returncode, what, node.last_line()))
        pids = probe.pids()
        elapsed = time.monotonic() - t0
        if pids is None:
            return 0.0
        last = pids
        if children is not None:
            children.add(pids)
        return elapsed if done(pids, elapsed) else 0.0

    try:
        return wait_until(check, START_TIMEOUT, what)
    except BenchError as e:
        if 'timed out' in str(e):
            raise BenchError('%s (the hub lists %s)' % (e, '%d %s instance(s)' % (len(last), SERVICE)
                                                          if last is not None else 'nothing: no answer')) from None
        raise


def count_is(n: int) -> Callable[[list[int], float], bool]:
    return lambda pids, _: len(pids) == n


# -- node.yml and the node --------------------------------------------------------------

def node_yml(url: str, count: int) -> str:
    command = 'fannode instance --config %s' % shlex.quote(str(BENCH / 'conf' / 'greeting.yml'))
    # JSON strings are YAML strings: safe whatever the paths hold
    return ('registry: %s\nenv: {PYTHONPATH: %s}\ninstances:\n  greeting: {command: %s, numprocesses: %d}\n'
            % (json.dumps(url), json.dumps(str(BENCH / 'services')), json.dumps(command), count))


def save(path: Path, text: str) -> None:
    """Replace the file in one step, as many editors save: the node never reads half of it."""
    tmp = path.with_suffix('.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)


def node_ps(path: Path) -> dict[str, Any]:
    """`fannode ps` without starting the CLI: the same call on the node's control socket."""
    from fannode.node import control, paths
    return control.call(paths.control_endpoint(str(path)), 'ps', timeout=5.0)


def block_pids(status: dict[str, Any], name: str = 'greeting') -> list[int]:
    for block in status.get('blocks', []):
        if block['name'] == name:
            return [p['pid'] for p in block['processes']]
    raise BenchError("fannode ps shows no block '%s'" % name)


def check_node(node: Proc) -> None:
    if node.popen.poll() is not None:
        raise BenchError('fannode up exited with %s: %s' % (node.popen.returncode, node.last_line()))


# -- the measurements -----------------------------------------------------------------

def anchor(procs: Procs, say: Callable[[str], None]) -> dict[str, Any]:
    """A hub, then 10 instances, started by hand: what `fannode up` does, without the node."""
    url = 'hub://127.0.0.1:%d' % free_port()
    probe = HubProbe(url)
    try:
        t0 = time.monotonic()
        hub = procs.hub(url)
        hub_s = wait_listed(probe, t0, lambda pids, _: True, 'the anchor hub to answer')
        t0 = time.monotonic()
        for i in range(COUNT):
            procs.start('anchor-instance-%d' % (i + 1), INSTANCE, {'FANNODE_REGISTRY': url})
        up_s = wait_listed(probe, t0, count_is(COUNT), 'the hub to list %d instances started by hand' % COUNT)
    finally:
        probe.close()
    say('  ✓ anchor: hub answering after %.2f s; 10 instances listed %.2f s after their start' % (hub_s, up_s))
    procs.stop_all()  # the instances first, then their hub; before the node starts
    return {'hub_s': round(hub_s, 3), 'instances_s': round(up_s, 3), 'total_s': round(hub_s + up_s, 3)}


def measure(args: argparse.Namespace, procs: Procs, children: Children, say: Callable[[str], None],
            status: Callable[[str], None]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    start = _cpu_sample()
    status('anchor: a hub and %d instances started by hand' % COUNT)
    figures['anchor'] = anchor(procs, say)

    # 1. up → all discoverable
    url = 'hub://127.0.0.1:%d' % free_port()
    path = procs.dir / 'node.yml'
    save(path, node_yml(url, COUNT))
    probe = HubProbe(url)
    try:
        status('fannode up: %d instances' % COUNT)
        t0 = time.monotonic()
        node = procs.start('node', [*FANNODE, 'up'])  # in the dir of node.yml, as a user runs it
        at: dict[str, float] = {}  # when the node's hub first answered, and listed a first instance

        def all_up(pids: list[int], elapsed: float) -> bool:
            at.setdefault('hub', elapsed)
            if pids:
                at.setdefault('first', elapsed)
            return len(pids) == COUNT

        up_s = wait_listed(probe, t0, all_up, 'the node to start %d instances' % COUNT, node, children)
        children.add_tree(node.pid)
        ready = wait_until(lambda: check_node(node) or re.search(r'cluster ready in ([\d.]+)s: (.*)', node.output()),
                           START_TIMEOUT, 'the node to print "cluster ready"')
        figures['up'] = {'seconds': round(up_s, 3), 'hub_s': round(at['hub'], 3), 'first_s': round(at['first'], 3),
                         'node_says_s': float(ready.group(1)),
                         'node_says': ready.group(2).strip(), 'target_max_s': TARGET_UP_S,
                         'pass': up_s <= TARGET_UP_S}
        say('  ✓ fannode up: %d listed after %.2f s; the node says "cluster ready in %ss: %s"'
            % (COUNT, up_s, ready.group(1), ready.group(2).strip()))

        # 2. kill → replaced
        runs = []
        killed: list[int] = []
        for i in range(args.kills):
            status('kill -9, %d/%d' % (i + 1, args.kills))
            before = probe.pids() or []
            if len(before) != COUNT:
                raise BenchError('the hub lists %d instances before kill %d, expected %d' % (len(before), i + 1, COUNT))
            # The oldest one not killed yet: a crash after running a while. (One within 5 s
            # of its start counts as a failed start, and failures in a row back off.)
            victim = min((p for p in before if p not in killed), key=lambda p: children.procs[p].create_time())
            seen: dict[str, float] = {}

            def replaced(pids: list[int], elapsed: float) -> bool:
                if 'new' not in seen and set(pids) - set(before):
                    seen['new'] = elapsed
                if 'gone' not in seen and victim not in pids:
                    seen['gone'] = elapsed
                return len(pids) == COUNT and victim not in pids

            t0 = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
            done = wait_listed(probe, t0, replaced, 'pid %d to be replaced' % victim, node, children)
            runs.append({'pid': victim, 'seconds': round(done, 3), 'replacement_listed_s': round(seen['new'], 3),
                         'dead_unlisted_s': round(seen['gone'], 3)})
            say('  ✓ kill -9 %d (%d/%d): 10 listed without it after %.2f s (replacement listed after %.2f s, '
                'dead one unlisted after %.2f s)' % (victim, i + 1, args.kills, done, seen['new'], seen['gone']))
        mid = median(r['seconds'] for r in runs)
        figures['kill'] = {
            'runs': runs, 'median_s': round(mid, 3), 'max_s': max(r['seconds'] for r in runs),
            'replacement_listed_median_s': round(median(r['replacement_listed_s'] for r in runs), 3),
            'dead_unlisted_median_s': round(median(r['dead_unlisted_s'] for r in runs), 3),
            'target_max_median_s': TARGET_REPLACE_S, 'pass': mid <= TARGET_REPLACE_S}

        # 3. edit → scaled
        status('node.yml: %d → %d processes' % (COUNT, MORE))
        t0 = time.monotonic()
        save(path, node_yml(url, MORE))
        more_s = wait_listed(probe, t0, count_is(MORE), 'the node to scale to %d' % MORE, node, children)
        say('  ✓ node.yml %d → %d: %d listed after %.2f s' % (COUNT, MORE, MORE, more_s))
        status('node.yml: %d → %d processes' % (MORE, FEWER))
        t0 = time.monotonic()
        save(path, node_yml(url, FEWER))
        at = {}  # when discovery, and when the node's ps, first showed 5

        def fewer(pids: list[int], elapsed: float) -> bool:
            if 'listed' not in at and len(pids) == FEWER:
                at['listed'] = elapsed
            if 'ps' not in at and len(block_pids(node_ps(path))) == FEWER:
                at['ps'] = time.monotonic() - t0
            return len(at) == 2

        wait_listed(probe, t0, fewer, 'the node to scale to %d' % FEWER, node, children)
        fewer_s, ps_s = at['listed'], at['ps']
        cli = subprocess.run([*FANNODE, 'ps', '--json', '--file', str(path)], env=procs.env, cwd=procs.dir,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        if cli.returncode != 0:
            raise BenchError('fannode ps --json failed (%d): %s' % (cli.returncode, cli.stderr.strip()[-300:]))
        cli_count = len(block_pids(json.loads(cli.stdout)))
        figures['scale'] = {
            'up': {'from': COUNT, 'to': MORE, 'seconds': round(more_s, 3), 'target_max_s': TARGET_SCALE_S,
                   'pass': more_s <= TARGET_SCALE_S},
            'down': {'from': MORE, 'to': FEWER, 'seconds': round(fewer_s, 3), 'ps_seconds': round(ps_s, 3),
                     'ps_cli_processes': cli_count, 'target_max_s': TARGET_SCALE_S, 'pass': fewer_s <= TARGET_SCALE_S}}
        say('  ✓ node.yml %d → %d: %d listed after %.2f s; fannode ps shows %d after %.2f s (the CLI: %d)'
            % (MORE, FEWER, FEWER, fewer_s, FEWER, ps_s, cli_count))
    finally:
        probe.close()

    # 4. node RSS and CPU, idle
    status('node RSS and CPU, idle (%g s + %g s)' % (args.idle, args.cpu_window))
    time.sleep(args.idle)
    check_node(node)
    me = psutil.Process(node.pid)
    rss = me.memory_info().rss / MiB
    before, t0 = me.cpu_times(), time.monotonic()
    time.sleep(args.cpu_window)
    after, wall = me.cpu_times(), time.monotonic() - t0
    cpu = (after.user + after.system - before.user - before.system) / wall
    figures['node'] = {'rss_mib': round(rss, 1), 'target_max_rss_mib': TARGET_RSS_MIB, 'pass': rss <= TARGET_RSS_MIB,
                       'idle_cpu': round(cpu, 3), 'idle_cpu_window_s': args.cpu_window}
    say('  ✓ node idle: RSS %.1f MiB, CPU %.3f cores' % (rss, cpu))

    # stop: SIGINT, exit 0 within 15 s, no child left
    status('SIGINT: stopping the node')
    children.add_tree(node.pid)
    t0 = time.monotonic()
    node.popen.send_signal(signal.SIGINT)
    try:
        code = node.popen.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError('the node did not exit within %gs of SIGINT (last output: %s)'
                         % (STOP_TIMEOUT, node.last_line())) from None
    stop_s = time.monotonic() - t0
    if code != 0:
        raise BenchError('the node exited with %s on SIGINT, expected 0: %s' % (code, node.last_line()))
    left = children.alive()
    if left:
        raise BenchError('%d of the node\'s %d children outlived it: pid %s'
                         % (len(left), len(children.procs), ', '.join(map(str, left))))
    figures['stop'] = {'seconds': round(stop_s, 3), 'exit': code, 'children_seen': len(children.procs),
                       'children_left': 0}
    say('  ✓ SIGINT: the node exited 0 after %.2f s; none of the %d children it ran is left'
        % (stop_s, len(children.procs)))
    figures['node_log_problems'] = problems(node.output())
    figures['background_cpu'] = round(_background(start, _cpu_sample()), 2)
    return figures


def _cpu_sample() -> tuple[float, float, float]:
    """(wall, machine busy, ours) in seconds. Ours is this process and every process it
    started that has been reaped (the node counts its children when it reaps them), so
    it is complete once the node has exited."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, 'irq', 0.0) + getattr(t, 'softirq', 0.0)
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.monotonic(), busy, me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _background(start: tuple[float, float, float], end: tuple[float, float, float]) -> float:
    """CPU (cores) used by other processes meanwhile: starting 10 Python processes on a
    small machine is CPU-bound, so a busy neighbour slows every row."""
    wall = end[0] - start[0]
    return max(0.0, ((end[1] - start[1]) - (end[2] - start[2])) / wall) if wall > 0 else 0.0


def problems(log: str) -> list[str]:
    """The node's own warnings, errors and tracebacks (children's lines carry a '│')."""
    return [line for line in log.splitlines()
            if '│' not in line and re.search(r'WARNING|ERROR|Traceback|Error\b', line)][:20]


# -- output -----------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    return report.machine(circus=metadata.version('circus'), pyzmq=zmq.__version__)


def table(args: argparse.Namespace, figures: dict[str, Any], info: dict[str, Any]) -> Table:
    t = Table(title='fannode node benchmark: fannode up, timed through discovery', caption=(
        'each time from the moment it starts (Popen, kill, node.yml saved) to the first 20 ms poll of the hub '
        "that shows it. %d CPUs, Python %s, circus %s; the node prints its children's output (no --quiet); "
        'other processes used %.2f CPU meanwhile' % (info['cpus'], info['python'], info['circus'],
                                                     figures['background_cpu'])))
    for name, justify in (('measurement', 'left'), ('result', 'right'), ('detail', 'left'),
                          ('target', 'right'), ('', 'center')):
        t.add_column(name, justify=justify)

    a, up, kill, scale, node, stop = (figures[k] for k in ('anchor', 'up', 'kill', 'scale', 'node', 'stop'))
    t.add_row('anchor: hub + %d `fannode instance` by hand' % COUNT, '%.2f s' % a['total_s'],
              'hub answers after %.2f s; then %d instances listed after %.2f s' % (a['hub_s'], COUNT, a['instances_s']),
              'anchor', '')
    t.add_row('fannode up → %d listed' % COUNT, '%.2f s' % up['seconds'],
              '%+.2f s vs anchor; hub answers after %.2f s, first instance listed after %.2f s; the node says '
              '"cluster ready in %.1fs: %s"' % (up['seconds'] - a['total_s'], up['hub_s'], up['first_s'],
                                                up['node_says_s'], up['node_says']),
              '≤ %g s' % TARGET_UP_S, verdict(up['pass']))
    runs = kill['runs']
    t.add_row('kill -9 one → %d listed, not it (median of %d)' % (COUNT, len(runs)), '%.2f s' % kill['median_s'],
              'max %.2f s; medians: replacement listed after %.2f s, dead one unlisted after %.2f s' % (
                  kill['max_s'], kill['replacement_listed_median_s'], kill['dead_unlisted_median_s']),
              '≤ %g s' % TARGET_REPLACE_S, verdict(kill['pass']))
    s = scale['up']
    t.add_row('node.yml %d → %d: %d listed' % (s['from'], s['to'], s['to']), '%.2f s' % s['seconds'], '',
              '≤ %g s' % TARGET_SCALE_S, verdict(s['pass']))
    s = scale['down']
    t.add_row('node.yml %d → %d: %d listed' % (s['from'], s['to'], s['to']), '%.2f s' % s['seconds'],
              'fannode ps shows %d after %.2f s; `fannode ps --json` then: %d' % (
                  s['to'], s['ps_seconds'], s['ps_cli_processes']),
              '≤ %g s' % TARGET_SCALE_S, verdict(s['pass']))
    t.add_row('node RSS, idle %g s' % args.idle, '%.1f MiB' % node['rss_mib'], 'the fannode up process alone',
              '≤ %g MiB' % TARGET_RSS_MIB, verdict(node['pass']))
    t.add_row('node CPU, idle', '%.3f cores' % node['idle_cpu'], 'over %g s, %d instances and the hub running'
              % (node['idle_cpu_window_s'], FEWER), '', '')
    t.add_row('SIGINT → node exited', '%.2f s' % stop['seconds'], 'exit %d; none of the %d children left' % (
        stop['exit'], stop['children_seen']), '≤ %g s, exit 0' % STOP_TIMEOUT, verdict(True))
    return t


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m bench.node', description='Time fannode up from the outside: start, replacement '
        'of a killed instance, live scaling; node RSS and CPU; clean stop. Exits 0 on a MISS; 1 on a failure.')
    parser.add_argument('--kills', type=int, metavar='N',
                        help='instances killed one after another (default: 5, or 1 with --quick)')
    parser.add_argument('--quick', action='store_true', help='one kill, shorter idle: a smoke test')
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')
    args = parser.parse_args(argv)
    quick_defaults(args, kills=(5, 1))
    if not 1 <= args.kills <= COUNT:
        parser.error('--kills must be 1..%d' % COUNT)
    args.idle = 0.5 if args.quick else 1.0
    args.cpu_window = 1.0 if args.quick else 2.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs = Procs()
    # The node's lock and sockets, and the journal of the hub it starts, go to the run's
    # directory, not to /tmp/fannode-UID and ~/.local/state; ours too, for `fannode ps`.
    for name in ('XDG_RUNTIME_DIR', 'XDG_STATE_HOME'):
        os.environ[name] = procs.env[name] = str(procs.dir)
    children = Children()

    def stop(keep_logs: bool) -> None:
        children.kill_left()  # the node stops its children; if it was killed, we do
        if not keep_logs:
            shutil.rmtree(procs.dir / 'fannode', ignore_errors=True)  # the node's runtime and state dir

    def render(figures: dict[str, Any], err: Console) -> None:
        for line in figures['node_log_problems']:
            err.print('[yellow]node log:[/] %s' % escape(line), highlight=False, soft_wrap=True)
        note_noisy(err, figures['background_cpu'], 'the times are')
        info = machine()
        if args.json:
            print_json({'machine': info, 'kills': args.kills, 'idle': args.idle, 'figures': figures})
        else:
            table_console(160).print(table(args, figures, info))

    return run_bench(procs, lambda say, status: measure(args, procs, children, say, status), render,
                     spinner('node benchmark'), stop)


if __name__ == '__main__':
    sys.exit(main())
