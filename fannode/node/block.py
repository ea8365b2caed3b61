"""One instance block of node.yml: its circus watcher, and what circus does not keep.

circus spawns and reaps; the Block decides: worker indexes (1..N, reused), readiness,
the restart policy and its backoff (circus 0.19's flapping control does not work), and
which exits were deliberate. Its methods run on the node's loop, some from inside circus
(the hooks).
"""
from __future__ import annotations

import asyncio
import random
import signal
import time
from typing import TYPE_CHECKING, Any, Protocol

from fannode.logs.records import unpack
from fannode.node import childlogs
from fannode.node import limitwatch
from fannode.node import liveness
from fannode.node import ready
from fannode.node.orphans import Groups
from fannode.node.output import LineSink, Printer
from fannode.node.preload import Pool
from fannode.node.topology import InstanceSpec, ReadyCheck, Topology

if TYPE_CHECKING:
    from circus.watcher import Watcher

STABLE = 5.0          # a process that ran this long before dying did not fail to start
BACKOFF_FIRST = 0.5   # delay before the second quick restart, doubled after each
BACKOFF_CAP = 30.0


def describe_exit(code: int | None) -> str:
    if code is None:
        return 'exited'
    if code < 0:
        try:
            return 'killed by %s' % signal.Signals(-code).name
        except ValueError:
            return 'killed by signal %d' % -code
    return 'exited with status %d' % code


class NodeView(Protocol):
    """What a block uses of the node running it (fannode.node.supervisor.Node)."""

    @property
    def arbiter(self) -> Any: ...           # circus' Arbiter, once the node runs
    @property
    def directory(self) -> str: ...         # node.yml's, where commands run by default
    @property
    def forwarder(self) -> childlogs.Forwarder | None: ...
    @property
    def groups(self) -> Groups: ...         # the process groups of every block
    @property
    def loop(self) -> Any: ...              # the IOLoop circus runs on
    @property
    def name(self) -> str: ...
    @property
    def preloads(self) -> Pool: ...         # templates of preloaded blocks
    @property
    def printer(self) -> Printer: ...
    @property
    def probe(self) -> ready.Probe | None: ...
    @property
    def stopping(self) -> bool: ...
    @property
    def topology(self) -> Topology: ...

    def forget(self, pid: int) -> None: ...


class Block:
    """One instance block of node.yml and its processes."""

    def __init__(self, node: NodeView, spec: InstanceSpec):
        self.node, self.spec = node, spec
        self.name = spec.name
        self.watcher: Watcher | None = None  # made when the block is launched
        self.desired = spec.numprocesses
        self.index: dict[int, int] = {}      # pid → worker index (1..N)
        self.since: dict[int, float] = {}    # pid → when it started (monotonic)
        self.ready_pids: set[int] = set()
        self.log_seen: set[int] = set()
        self.waiting_said: set[int] = set()  # pids said to be registered as not ready
        self.deliberate: set[int] = set()    # pids we signalled: their exit is no failure
        self.stopping: set[int] = set()      # pids being scaled away, not yet reaped
        self.held = 0        # slots waiting out a backoff
        self.gone = 0        # slots not refilled: exited under the policy, or failed
        self.failures: dict[int, int] = {}  # worker index → its quick failures in a row
        self.restarts = 0
        self.failed: str | None = None
        self.last_exit = ''
        self.next_index = 0
        self.ready_since: float | None = None
        self.exits: list[int | None] = []  # codes of processes not restarted (the policy): one-shot outcomes
        self.alive: set[int] = set()  # pids whose last liveness probe passed (fannode.node.liveness)
        self.notes: dict[int, str] = {}  # pid → why the node killed it, for last_exit
        self.out = LineSink(lambda pid, line: self.on_line(pid, line, 'stdout'))
        self.err = LineSink(lambda pid, line: self.on_line(pid, line, 'stderr'))

    # -- state -------------------------------------------------------------------

    @property
    def target(self) -> int:
        return max(0, self.desired - self.held - self.gone)

    @property
    def live(self) -> set[int]:
        return set(self.index) - self.stopping

    @property
    def running(self) -> int:
        return len(self.live)

    @property
    def is_ready(self) -> bool:
        return self.failed is None and self.held == 0 and len(self.ready_pids & self.live) >= self.target

    def healthy(self, pid: int) -> bool:
        """Ready, and its liveness probe (if it has one) passed last time."""
        return pid in self.ready_pids and (self.spec.liveness is None or pid in self.alive)

    @property
    def is_healthy(self) -> bool:
        return self.is_ready and sum(self.healthy(pid) for pid in self.live) >= self.target

    @property
    def state(self) -> str:
        if self.failed:
            return 'failed'
        if self.watcher is None:
            return 'waiting'
        if self.held:
            return 'backoff'
        if self.exits and not self.target and all(code == 0 for code in self.exits):
            return 'completed'  # a one-shot block (restart: never, on-failure) whose processes all exited 0
        if self.is_ready:
            return 'ready' if self.target else 'stopped'
        return 'starting'

    def sync(self) -> None:
        """Tell circus how many processes to keep. Extra ones are stopped here, highest
        index first (so the rest keep 1..N): circus would stop them itself, but holding
        the arbiter lock for the whole grace period, when no other block is looked after."""
        if self.watcher is None:
            return
        keep = [pid for pid, _ in sorted(self.index.items(), key=lambda kv: kv[1]) if pid not in self.stopping]
        for pid in keep[self.target:]:
            self.stop_process(pid)
        self.watcher.numprocesses = self.target + len(self.stopping)

    def stop_process(self, pid: int) -> None:
        assert self.watcher is not None  # it has pids only once launched
        self.stopping.add(pid)
        self.deliberate.add(pid)
        # The process and what it started; the node's sweep kills them after stop_timeout.
        self.node.groups.stop(pid, self.watcher.stop_signal)

    def scale(self, count: int) -> None:
        """A new count from the user: also a fresh start for a failed block."""
        self.desired, self.gone, self.failed = count, 0, None
        self.failures.clear()
        self.exits.clear()
        self.sync()

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            'name': self.name, 'state': self.state, 'desired': self.desired, 'running': self.running,
            'ready': len(self.ready_pids & self.live), 'restarts': self.restarts,
            'command': self.spec.command, 'failed': self.failed, 'last_exit': self.last_exit,
            'processes': [{'pid': pid, 'index': i, 'uptime': round(now - self.since.get(pid, now), 1),
                           'ready': pid in self.ready_pids, 'stopping': pid in self.stopping,
                           'healthy': self.healthy(pid)}
                          for pid, i in sorted(self.index.items(), key=lambda kv: kv[1])],
            'liveness': liveness.describe(self.spec.liveness), 'limits': limitwatch.status(self.spec.limits),
        }

    # -- circus hooks (called on the loop, from inside circus) -------------------

    def before_spawn(self, watcher: Watcher, **_: Any) -> bool:
        used = {i for pid, i in self.index.items() if pid not in self.stopping}  # a replacement takes its index
        self.next_index = next(i for i in range(1, len(used) + 2) if i not in used)
        watcher.env['FANNODE_WORKER_INDEX'] = str(self.next_index)
        if self.spec.port is not None:  # a Procfile's, as foreman: web.1 5000, web.2 5001
            watcher.env['PORT'] = str(self.spec.port + self.next_index - 1)
        return True

    def after_spawn(self, pid: int, **_: Any) -> bool:
        self.node.groups.add(pid, self.spec.stop_timeout)  # circus made it a group leader
        self.index[pid] = self.next_index
        self.since[pid] = time.monotonic()
        limitwatch.placed(self, pid)  # its cgroup, when the node may make them
        if self.spec.ready.kind == 'started':
            self.ready_pids.add(pid)
        self.node.printer.event('%s.%d started (pid %d)' % (self.name, self.next_index, pid), 'dim')
        return True

    def before_signal(self, pid: int, signum: int | None = None, **_: Any) -> bool:
        """circus stopping a process (the watcher stopped or removed): its group's grace
        starts now, kept by the node's Groups, not again when the process exits."""
        self.deliberate.add(pid)
        if self.watcher is not None and signum == self.watcher.stop_signal:
            self.node.groups.stopping(pid)
        return True

    def after_reap(self, process_pid: int, exit_code: int | None = None, **_: Any) -> bool:
        self.reaped(process_pid, exit_code)
        return True

    def reaped(self, pid: int, code: int | None) -> None:
        self.out.flush(pid)
        self.err.flush(pid)
        index = self.index.pop(pid, None)
        if index is None:
            return
        self.stopping.discard(pid)
        if self.spec.is_service:  # SIGKILLed instances cannot leave discovery themselves
            self.node.forget(pid)
        uptime = time.monotonic() - self.since.pop(pid, time.monotonic())
        self.ready_pids.discard(pid)
        self.log_seen.discard(pid)
        self.alive.discard(pid)
        who = '%s.%d' % (self.name, index)
        reason = limitwatch.exit_reason(self, pid)  # its cgroup and note go, stopped on purpose or not
        if pid in self.deliberate or self.node.stopping:
            self.deliberate.discard(pid)
            self.node.printer.event('%s stopped (pid %d)' % (who, pid), 'dim')
            self.sync()
            return
        self.last_exit = reason or describe_exit(code)
        policy = self.spec.restart
        if policy == 'never' or (policy == 'on-failure' and code == 0):
            self.gone += 1
            self.exits.append(code)
            if code != 0 and self.gone >= self.desired:  # a one-shot that did not complete
                self.failed = '%s (restart: %s)' % (self.last_exit, policy)
            self.node.printer.event('%s %s; not restarted (restart: %s)' % (who, self.last_exit, policy))
            self.sync()
            return
        self.restarts += 1
        failures = self.failures[index] = self.failures.get(index, 0) + 1 if uptime < STABLE else 0
        if failures > self.spec.max_restarts:
            self.failed = '%s %d times in a row, each within %gs of starting' % (
                self.last_exit, failures, STABLE)
            self.gone = self.desired - self.running
            self.sync()
            self.node.printer.error('%s failed: %s; not restarted until node.yml or `fannode scale` changes it'
                                    % (self.name, self.failed))
            for line in self.node.printer.tail(self.name)[-10:]:
                self.node.printer.error('  %s │ %s' % (self.name, line))
            return
        delay = 0.0 if failures <= 1 else min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (failures - 2))
        delay *= random.uniform(0.8, 1.2)
        if delay:
            self.held += 1
            asyncio.get_running_loop().call_later(delay, self.release)
            self.node.printer.event('%s %s after %.1fs; restarting in %.1fs (failure %d of %d)' % (
                who, self.last_exit, uptime, delay, failures, self.spec.max_restarts), 'yellow')
        else:
            self.node.printer.event('%s %s after %.1fs; restarting' % (who, self.last_exit, uptime), 'yellow')
        self.sync()

    def forget_removed(self) -> None:
        """circus drops the processes it stopped itself (scaling down) without the
        after_reap hook: forget them here."""
        if self.watcher is not None:
            for pid in set(self.index) - set(self.watcher.processes):
                self.reaped(pid, None)

    def release(self) -> None:
        self.held = max(0, self.held - 1)
        self.sync()

    def on_line(self, pid: int, line: str, stream: str = 'stdout') -> None:
        index = self.index.get(pid, 0)
        # records only where fannode writes them: any other line is text, whatever it looks like
        record = childlogs.parse(line, pid) if stream == 'stderr' and self.spec.runs_fannode else None
        text: str | None  # None: a record that is not printed (a span)
        if record is None:
            record = shown = childlogs.wrap(line, self.name, index, pid, stream)
            text = line
        else:
            shown = unpack(record, spans=False)[0]  # a span that carries a line is that line
            text = childlogs.display(shown) if shown['kind'] == 'log' else None
        check = self.spec.ready
        if check.kind == 'log' and str(check.target) in shown.get('msg', ''):
            self.log_seen.add(pid)
        if text is not None:
            self.node.printer.line(self.name, index, text)
            self.node.printer.record(shown)  # the dashboard's log pane, when it runs
            files = getattr(self.node, 'logfiles', None)  # a node.yml `logs:` (fannode.node.logfiles)
            if files is not None and self.spec.logs is not None:
                files.write(self.spec.logs, self.name, index, text)
        if self.node.forwarder is not None:
            self.node.forwarder.add(record)

    # -- readiness ---------------------------------------------------------------

    async def check_ready(self, registered: dict[int, list[str]]) -> None:
        pending = [pid for pid in self.index if pid not in self.ready_pids]
        if not pending:
            return
        check = self.spec.ready
        if check.kind == 'registered' and self.node.probe is None:
            self.ready_pids.update(pending)  # a registry the node cannot ask: started is all it knows
        elif check.kind == 'registered':
            self.ready_pids.update(pid for pid in pending if pid in registered)
        elif check.kind == 'log':
            self.ready_pids.update(pid for pid in pending if pid in self.log_seen)
        elif check.kind == 'tcp':
            assert check.target is not None  # load() requires an address for tcp
            if await ready.tcp_open(*ready.tcp_target(check.target)):
                self.ready_pids.update(pending)
        elif check.kind == 'http':
            if await ready.http_ok(self.http_url(check)):
                self.ready_pids.update(pending)
        else:
            self.ready_pids.update(pending)

    def unready(self, waiting: dict[int, list[str]]) -> None:
        """`waiting`: pids registered as not ready (a hard dependency has no ready instance),
        and what they wait for. Said once per pid until it is ready; one that was ready is
        not ready until it says it is again."""
        if self.spec.ready.kind != 'registered':
            return
        for pid in sorted(set(self.index) & set(waiting) - self.waiting_said):
            self.waiting_said.add(pid)
            was = pid in self.ready_pids
            self.ready_pids.discard(pid)
            self.node.printer.event('%s.%d %s: no ready instance of %s' % (
                self.name, self.index[pid], 'not ready' if was else 'registered, not ready',
                ', '.join(waiting[pid]) or 'a hard dependency'), 'yellow')
        self.waiting_said &= set(waiting)

    def http_url(self, check: ReadyCheck) -> str:
        target = str(check.target)
        if target.startswith('/'):
            port = self.node.topology.sockets[self.spec.sockets[0]].port
            return 'http://127.0.0.1:%d%s' % (port, target)
        return target
