"""The node case: the node supervisor, `fannode up`, timed from the outside through
discovery: how long until 10 (and 50) instances are listed after its start, beside a hub
and as many `fannode instance` processes started by hand (the anchor), preloaded (the
default: forked from a template, fannode.node.preload) and with `preload: false`; what
each instance costs in memory (PSS and USS, the template's share included); how long until
a killed instance is replaced, until an edit of node.yml is applied; the node's RSS when
idle; and a clean stop on SIGINT (exit 0, no child left, or the case fails).
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import psutil
import zmq

from bench.procs import BENCH, FANNODE, BenchError, Proc, free_port, memory, wait_until
from bench.report import Row, at_most, compare
from bench.runner import ROUNDS, Context
from fannode.node.stopnode import alive

TARGET_UP_S = 3.0         # fannode up → 10, and 50, instances listed (preloaded)
TARGET_REPLACE_S = 0.5    # kill -9 → all listed again, without the dead one (median)
TARGET_INSTANCE_MIB = 12.0  # PSS and USS of each preloaded instance
TARGET_SCALE_S = 2.0      # node.yml saved → the new count listed
TARGET_RSS_MIB = 60.0     # the node process alone, idle
START_TIMEOUT = 15.0      # for each wait on discovery (more for many instances)
STOP_TIMEOUT = 30.0       # SIGINT → the node has exited
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
        from fannode.core import wire
        from fannode.hub.client import hub_endpoint
        self.wire = wire
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
        p = self.wire
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
        return [p.pid for p in alive(list(self.procs.values()))]

    def kill_left(self) -> list[int]:
        left = self.alive()
        for pid in left:
            try:
                self.procs[pid].kill()
            except psutil.NoSuchProcess:
                pass
        return left


def wait_listed(probe: HubProbe, t0: float, done: Callable[[list[int], float], bool], what: str,
                node: Proc | None = None, children: Children | None = None, timeout: float = START_TIMEOUT) -> float:
    """Poll discovery every 20 ms until `done(pids, seconds since t0)`; the seconds.
    BenchError if the node exits meanwhile or `timeout` passes."""
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
        return wait_until(check, timeout, what)
    except BenchError as e:
        if 'timed out' in str(e):
            raise BenchError('%s (the hub lists %s)' % (e, '%d %s instance(s)' % (len(last), SERVICE)
                                                          if last is not None else 'nothing: no answer')) from None
        raise


def count_is(n: int) -> Callable[[list[int], float], bool]:
    return lambda pids, _: len(pids) == n


# -- node.yml and the node --------------------------------------------------------------

def node_yml(url: str, count: int, preload: bool = True) -> str:
    command = 'fannode instance --config %s' % shlex.quote(str(BENCH / 'conf' / 'greeting.yml'))
    # JSON strings are YAML strings: safe whatever the paths hold
    return ('registry: %s\nenv: {PYTHONPATH: %s}\ninstances:\n  greeting: {command: %s, numprocesses: %d%s}\n'
            % (json.dumps(url), json.dumps(str(BENCH / 'services')), json.dumps(command), count,
               '' if preload else ', preload: false'))


def save(path: Path, text: str) -> None:
    """Replace the file in one step, as many editors save: the node never reads half of it."""
    tmp = path.with_suffix('.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)


def check_node(node: Proc) -> None:
    if node.popen.poll() is not None:
        raise BenchError('fannode up exited with %s: %s' % (node.popen.returncode, node.last_line()))


# -- the measurements -----------------------------------------------------------------

def deadline(count: int) -> float:
    """Starting many Python processes on a small machine takes a while: ~0.35 s each on 2 cores."""
    return max(START_TIMEOUT, count * 1.0)


def anchor(ctx: Context, count: int) -> float:
    """A hub, then `count` instances, started by hand: what `fannode up` does, without the
    node. Seconds from the hub's start until all are listed."""
    url = 'hub://127.0.0.1:%d' % free_port()
    probe = HubProbe(url)
    procs = ctx.procs
    try:
        t0 = time.monotonic()
        hub = procs.hub(url)
        wait_listed(probe, t0, lambda pids, _: True, 'the anchor hub to answer')
        instances = [procs.start('anchor-%d' % (i + 1), INSTANCE, {'FANNODE_REGISTRY': url}) for i in range(count)]
        up_s = wait_listed(probe, t0, lambda pids, _: len(pids) == count,
                           'the hub to list %d instances started by hand' % count, timeout=deadline(count))
    finally:
        probe.close()
    procs.stop(instances)  # together, then their hub
    procs.stop([hub])
    return up_s


class Node:
    """One `fannode up` of `count` instances, started in the case's dir (node.yml there,
    as a user runs it) and timed until the hub lists them all."""

    def __init__(self, ctx: Context, count: int, name: str, preload: bool = True):
        self.ctx = ctx
        self.count = count
        self.preload = preload
        self.url = 'hub://127.0.0.1:%d' % free_port()
        self.path = ctx.procs.dir / 'node.yml'
        self.children = Children()
        save(self.path, node_yml(self.url, count, preload))
        self.probe = HubProbe(self.url)
        t0 = time.monotonic()
        self.proc = ctx.procs.start(name, [*FANNODE, 'up'])
        self.up_s = self.wait(t0, count, 'the node to start %d instances' % count)
        self.children.add_tree(self.proc.pid)
        ready = wait_until(lambda: check_node(self.proc) or re.search(r'cluster ready in ([\d.]+)s', self.proc.output()),
                           START_TIMEOUT, 'the node to print "cluster ready"')
        self.says_s = float(ready.group(1))

    def wait(self, t0: float, count: int, what: str) -> float:
        return wait_listed(self.probe, t0, lambda pids, _: len(pids) == count, what, self.proc, self.children,
                           deadline(count))

    def kill(self, killed: list[int]) -> float:
        """kill -9 the oldest instance not killed yet (a crash after running a while; one
        within 5 s of its start counts as a failed start): seconds until all are listed
        again without it."""
        before = self.probe.pids() or []
        if len(before) != self.count:
            raise BenchError('the hub lists %d instances before a kill, expected %d' % (len(before), self.count))
        victim = min((p for p in before if p not in killed), key=lambda p: self.children.procs[p].create_time())
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        return wait_listed(self.probe, t0, lambda pids, _: len(pids) == self.count and victim not in pids,
                           'pid %d to be replaced' % victim, self.proc, self.children)

    def scale(self, count: int) -> float:
        """Save node.yml with `count` instances: seconds until the hub lists that many."""
        t0 = time.monotonic()
        save(self.path, node_yml(self.url, count, self.preload))
        seconds = self.wait(t0, count, 'the node to scale to %d' % count)
        self.count = count
        return seconds

    def memory(self) -> dict[str, float]:
        """What each listed instance costs, in MiB: the mean PSS of the instances with the
        template's PSS spread over them (what they take from the machine together), and
        their mean USS and RSS."""
        pids = self.probe.pids() or []
        if len(pids) != self.count:
            raise BenchError('the hub lists %d instances, expected %d' % (len(pids), self.count))
        templates = [p.pid for p in psutil.Process(self.proc.pid).children()
                     if p.pid not in pids and 'fannode preload' in ' '.join(p.cmdline())]
        each = [memory(pid) for pid in pids]
        shared = sum(memory(pid)['pss'] for pid in templates)
        return {'pss': (sum(m['pss'] for m in each) + shared) / len(each),
                'uss': sum(m['uss'] for m in each) / len(each), 'rss': sum(m['rss'] for m in each) / len(each)}

    def idle(self, seconds: float) -> tuple[list[float], float]:
        """RSS samples (MiB) of the node process alone and its CPU (cores) over `seconds`."""
        check_node(self.proc)
        me = psutil.Process(self.proc.pid)
        before, t0 = me.cpu_times(), time.monotonic()
        rss = []
        while time.monotonic() - t0 < seconds:
            time.sleep(seconds / 3)
            rss.append(me.memory_info().rss / MiB)
        after, wall = me.cpu_times(), time.monotonic() - t0
        return rss, (after.user + after.system - before.user - before.system) / wall

    def stop(self) -> float:
        """SIGINT: seconds until the node has exited 0, with none of its children left."""
        self.probe.close()
        self.children.add_tree(self.proc.pid)
        t0 = time.monotonic()
        self.proc.popen.send_signal(signal.SIGINT)
        try:
            code = self.proc.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BenchError('the node did not exit within %gs of SIGINT (last output: %s)'
                             % (STOP_TIMEOUT, self.proc.last_line())) from None
        seconds = time.monotonic() - t0
        if code != 0:
            raise BenchError('the node exited with %s on SIGINT, expected 0: %s' % (code, self.proc.last_line()))
        left = self.children.alive()
        if left:
            raise BenchError('%d of the node\'s %d children outlived it: pid %s'
                             % (len(left), len(self.children.procs), ', '.join(map(str, left))))
        return seconds

    def close(self) -> None:
        """Whatever happened: the node's children killed by PID if the node left any."""
        self.probe.close()
        self.children.add_tree(self.proc.pid)
        if self.proc.popen.poll() is None:
            self.proc.stop(STOP_TIMEOUT)
        self.children.kill_left()


def run(ctx: Context) -> list[Row]:
    sizes = ctx.pick((50, 10), (10,))  # the last size's last node goes on to kills, edits and idle
    reps, kills, edits = ctx.pick(ROUNDS, 1), ctx.pick(5, 2), ctx.pick(3, 1)
    # The node's lock and sockets, and the journal of the hub it starts, go to the case's
    # directory, not to /tmp/fannode-UID and ~/.local/state; ours too, for its control calls.
    saved = {name: os.environ.get(name) for name in ('XDG_RUNTIME_DIR', 'XDG_STATE_HOME')}
    for name in saved:
        os.environ[name] = ctx.procs.env[name] = str(ctx.procs.dir)
    ctx.quiet()  # everything here is timed, from the first start on
    try:
        if not ctx.quick:
            ctx.step('warming up: a hub and %d instances by hand' % sizes[-1])
            anchor(ctx, sizes[-1])
        by_hand: dict[int, list[float]] = {n: [] for n in sizes}
        up: dict[int, list[float]] = {n: [] for n in sizes}
        stop: dict[int, list[float]] = {n: [] for n in sizes}
        says: list[float] = []
        big = max(sizes)
        plain: list[float] = []  # up → big with preload: false
        mem: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for n in sizes:
            for i in range(reps):
                ctx.step('round %d/%d: a hub and %d instances by hand' % (i + 1, reps, n))
                by_hand[n].append(anchor(ctx, n))
                for preload in ((True, False) if n == big else (True,)):
                    ctx.step('round %d/%d: fannode up, %d instances%s' % (i + 1, reps, n, '' if preload else
                                                                          ', preload: false'))
                    node = Node(ctx, n, 'node-%d-%d%s' % (n, i + 1, '' if preload else '-plain'), preload)
                    try:
                        (up[n] if preload else plain).append(node.up_s)
                        says.append(node.says_s)
                        if n == big:
                            time.sleep(ctx.pick(1.0, 0.5))  # the instances settle: first calls and heartbeats
                            mem[preload].append(node.memory())
                        if (n, i, preload) == (sizes[-1], reps - 1, True):
                            rows = exercise(ctx, node, kills, edits)
                        if preload:
                            stop[n].append(node.stop())
                        else:
                            node.stop()
                    finally:
                        node.close()
                ctx.say('  ✓ %d instances: by hand %.2f s, fannode up %.2f s%s, SIGINT → all gone %.2f s'
                        % (n, by_hand[n][-1], up[n][-1], ' (preload: false %.2f s)' % plain[-1] if n == big else '',
                           stop[n][-1]))
        ctx.details['node_says_cluster_ready_s'] = says
        ctx.details['instance_memory_mib'] = {'preloaded': mem[True], 'preload_false': mem[False]}
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    ups = [compare('up.%d' % n, 'fannode up → %d discoverable' % n, 's', up[n],
                   'hub + %d instances started by hand' % n, by_hand[n], at_most(TARGET_UP_S))
           for n in sorted(sizes)]
    ups += [compare('up.%d.plain' % big, 'fannode up → %d, preload: false' % big, 's', plain,
                    'hub + %d instances started by hand' % big, by_hand[big]),
            compare('up.%d.preload' % big, 'fannode up → %d discoverable' % big, 's', up[big],
                    'the same, preload: false', plain)]
    ups += [compare('memory.%s' % kind, 'memory per instance, %s (%d preloaded)' % (kind.upper(), big), 'MiB',
                    [m[kind] for m in mem[True]], 'the same, preload: false', [m[kind] for m in mem[False]],
                    at_most(TARGET_INSTANCE_MIB))
            for kind in ('pss', 'uss')]
    stops = [compare('stop.%d' % n, 'SIGINT → node and %d instances gone' % n, 's', stop[n]) for n in sorted(sizes)]
    return ups + rows + stops


def exercise(ctx: Context, node: Node, kills: int, edits: int) -> list[Row]:
    """On a running node: kills, edits of node.yml up and back, then the idle node."""
    count, more = node.count, node.count + 5
    killed: list[int] = []
    replaced = []
    for i in range(kills):
        ctx.step('kill -9, %d/%d' % (i + 1, kills))
        replaced.append(node.kill(killed))
    grow, shrink = [], []
    for i in range(edits):
        ctx.step('node.yml %d → %d, %d/%d' % (count, more, i + 1, edits))
        grow.append(node.scale(more))
        ctx.step('node.yml %d → %d, %d/%d' % (more, count, i + 1, edits))
        shrink.append(node.scale(count))
    ctx.step('the node, idle')
    rss, cpu = node.idle(ctx.pick(2.0, 0.5))
    ctx.details['node_idle_cpu'] = round(cpu, 3)
    problems_seen = problems(node.proc.output())
    if problems_seen:
        ctx.details['node_log_problems'] = problems_seen
    return [
        compare('kill', 'kill -9 one of %d → replaced, listed' % count, 's', replaced,
                target=at_most(TARGET_REPLACE_S)),
        compare('scale.up', 'node.yml %d → %d: %d listed' % (count, more, more), 's', grow,
                target=at_most(TARGET_SCALE_S)),
        compare('scale.down', 'node.yml %d → %d: %d listed' % (more, count, count), 's', shrink,
                target=at_most(TARGET_SCALE_S)),
        compare('rss', 'node RSS, idle (the fannode up process)', 'MiB', rss, target=at_most(TARGET_RSS_MIB)),
    ]


def problems(log: str) -> list[str]:
    """The node's own warnings, errors and tracebacks (children's lines carry a '│')."""
    return [line for line in log.splitlines()
            if '│' not in line and re.search(r'WARNING|ERROR|Traceback|Error\b', line)][:20]
