"""The node: a circus arbiter, embedded, running the blocks of node.yml.

circus spawns and reaps; this module decides. Each block of `instances:` is one circus
watcher plus a Block that keeps what circus does not: worker indexes, readiness,
restart policy and backoff (circus 0.19's flapping control does not work), and which
exits were deliberate. Everything runs on one asyncio loop (tornado on top), in the main
thread, never under gevent.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import socket
import sys
import time
from typing import Any, Awaitable, Callable

import psutil

from fannode.exceptions import FannodeError
from fannode.node import childlogs
from fannode.node import ready
from fannode.node.output import LineSink, Printer
from fannode.node.topology import HUB_BLOCK, InstanceSpec, ReadyCheck, Topology

CHECK_DELAY = 0.2     # circus finds dead children on this tick
STABLE = 5.0          # a process that ran this long before dying did not fail to start
BACKOFF_FIRST = 0.5   # delay before the second quick restart, doubled after each
BACKOFF_CAP = 30.0
POLL = 0.1            # readiness checks


def fannode_command() -> str:
    """The fannode next to this Python (the venv's), so node.yml can say `fannode ...`
    without the venv on PATH."""
    mine = os.path.join(os.path.dirname(sys.executable), 'fannode')
    return mine if os.access(mine, os.X_OK) else shutil.which('fannode') or 'fannode'


def describe_exit(code: int | None) -> str:
    if code is None:
        return 'exited'
    if code < 0:
        try:
            return 'killed by %s' % signal.Signals(-code).name
        except ValueError:
            return 'killed by signal %d' % -code
    return 'exited with status %d' % code


async def retry_conflict(call: Callable[[], Any]) -> Any:
    """Locked arbiter and watcher calls raise ConflictError while the periodic check or
    another command holds the lock: try again shortly."""
    from circus.exc import ConflictError
    while True:
        try:
            result = call()
            if isinstance(result, Awaitable) or asyncio.isfuture(result):
                result = await result
            return result
        except ConflictError:
            await asyncio.sleep(0.02)


def _no_conflicts(record: logging.LogRecord) -> bool:
    """circus' periodic check raises ConflictError whenever a command holds the arbiter
    lock, and tornado logs it with a traceback; the check simply runs again next tick."""
    from circus.exc import ConflictError
    return not (record.exc_info and isinstance(record.exc_info[1], ConflictError))


class Block:
    """One instance block of node.yml and its processes."""

    def __init__(self, node: 'Node', spec: InstanceSpec):
        self.node, self.spec = node, spec
        self.name = spec.name
        self.watcher = None
        self.desired = spec.numprocesses
        self.index: dict[int, int] = {}      # pid → worker index (1..N)
        self.since: dict[int, float] = {}    # pid → when it started (monotonic)
        self.ready_pids: set[int] = set()
        self.log_seen: set[int] = set()
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

    @property
    def state(self) -> str:
        if self.failed:
            return 'failed'
        if self.watcher is None:
            return 'waiting'
        if self.held:
            return 'backoff'
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
        self.stopping.add(pid)
        self.deliberate.add(pid)
        try:
            os.kill(pid, self.watcher.stop_signal)
        except ProcessLookupError:
            return
        asyncio.get_running_loop().call_later(self.spec.stop_timeout, self.force_stop, pid)

    def force_stop(self, pid: int) -> None:
        if pid in self.stopping:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def scale(self, count: int) -> None:
        """A new count from the user: also a fresh start for a failed block."""
        self.desired, self.gone, self.failed = count, 0, None
        self.failures.clear()
        self.sync()

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            'name': self.name, 'state': self.state, 'desired': self.desired, 'running': self.running,
            'ready': len(self.ready_pids & self.live), 'restarts': self.restarts,
            'command': self.spec.command, 'failed': self.failed, 'last_exit': self.last_exit,
            'processes': [{'pid': pid, 'index': i, 'uptime': round(now - self.since.get(pid, now), 1),
                           'ready': pid in self.ready_pids, 'stopping': pid in self.stopping}
                          for pid, i in sorted(self.index.items(), key=lambda kv: kv[1])],
        }

    # -- circus hooks (called on the loop, from inside circus) -------------------

    def before_spawn(self, watcher, **_: Any) -> bool:
        used = set(self.index.values())
        self.next_index = next(i for i in range(1, len(used) + 2) if i not in used)
        watcher.env['FANNODE_WORKER_INDEX'] = str(self.next_index)
        return True

    def after_spawn(self, pid: int, **_: Any) -> bool:
        self.index[pid] = self.next_index
        self.since[pid] = time.monotonic()
        if self.spec.ready.kind == 'started':
            self.ready_pids.add(pid)
        self.node.printer.event('%s.%d started (pid %d)' % (self.name, self.next_index, pid), 'dim')
        return True

    def before_signal(self, pid: int, **_: Any) -> bool:
        self.deliberate.add(pid)
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
        who = '%s.%d' % (self.name, index)
        if pid in self.deliberate or self.node.stopping:
            self.deliberate.discard(pid)
            self.node.printer.event('%s stopped (pid %d)' % (who, pid), 'dim')
            self.sync()
            return
        self.last_exit = describe_exit(code)
        policy = self.spec.restart
        if policy == 'never' or (policy == 'on-failure' and code == 0):
            self.gone += 1
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
        record = childlogs.parse(line)
        if record is None:
            record, text = childlogs.wrap(line, self.name, index, pid, stream), line
        else:
            text = childlogs.display(record) if record['kind'] == 'log' else None
        check = self.spec.ready
        if check.kind == 'log' and str(check.target) in record.get('msg', ''):
            self.log_seen.add(pid)
        if text is not None:
            self.node.printer.line(self.name, index, text)
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
            if await ready.tcp_open(*ready.tcp_target(check.target)):
                self.ready_pids.update(pending)
        elif check.kind == 'http':
            if await ready.http_ok(self.http_url(check)):
                self.ready_pids.update(pending)
        else:
            self.ready_pids.update(pending)

    def http_url(self, check: ReadyCheck) -> str:
        target = str(check.target)
        if target.startswith('/'):
            port = self.node.topology.sockets[self.spec.sockets[0]].port
            return 'http://127.0.0.1:%d%s' % (port, target)
        return target

    # -- the watcher -------------------------------------------------------------

    def make_watcher(self):
        from circus.watcher import Watcher
        spec = self.spec
        argv = list(spec.argv)
        if argv[0] == 'fannode':
            argv[0] = fannode_command()
        env = {'PYTHONUNBUFFERED': '1', 'FANNODE_LOG_FORMAT': 'json',  # records for childlogs.parse
               'FANNODE_REGISTRY': self.node.topology.registry,
               'FANNODE_EVENTS': self.node.topology.events, 'FANNODE_NODE': self.node.name,
               'FANNODE_BLOCK': self.name, **spec.env_dict()}
        if spec.sockets:
            env['FANNODE_SOCKETS'] = ','.join(
                '%s=%d' % (name, self.node.arbiter.sockets[name].fileno()) for name in spec.sockets)
        hooks = {name: (getattr(self, name), False)
                 for name in ('before_spawn', 'after_spawn', 'before_signal', 'after_reap')}
        return Watcher(self.name, argv[0], args=argv[1:], numprocesses=self.target,
                       working_dir=spec.cwd or self.node.directory, env=env, copy_env=True,
                       graceful_timeout=spec.stop_timeout, use_sockets=bool(spec.sockets),
                       stdout_stream={'stream': self.out}, stderr_stream={'stream': self.err},
                       hooks=hooks, max_retry=1, loop=self.node.loop)

    def missing_command(self) -> str | None:
        argv0 = self.spec.argv[0]
        if argv0 == 'fannode':
            return None
        path = dict(self.spec.env_dict()).get('PATH', os.environ.get('PATH'))
        cwd = self.spec.cwd or self.node.directory
        if os.sep in argv0:
            found = os.access(os.path.join(cwd, argv0), os.X_OK)
        else:
            found = shutil.which(argv0, path=path) is not None
        return None if found else 'command not found: %s' % argv0


class Node:
    def __init__(self, topology: Topology, printer: Printer):
        self.topology = topology
        self.printer = printer
        self.directory = os.path.dirname(topology.path)
        self.name = os.uname().nodename
        self.host = socket.gethostname()  # what instances register as
        self.blocks: dict[str, Block] = {}
        self.arbiter = None
        self.loop = None
        self.stopping = False
        self.stop_requested: asyncio.Event | None = None
        self.kill_now = False
        # from the start of the process: "ready in" includes importing circus
        self.started = time.monotonic() - max(0.0, time.time() - psutil.Process().create_time())
        self.announced = False
        self.starting = True   # no "cluster ready" before the last wave has started
        self.probe: Any = None  # ready.HubProbe or ready.ZookeeperProbe
        self.forwarder: childlogs.Forwarder | None = None  # children's records to the log hub
        self.log_port: int | None = None  # of the log hub this node runs on ZooKeeper clusters

    # -- running ---------------------------------------------------------------

    async def run(self, endpoints: tuple[str, str], control: str) -> int:
        from circus.arbiter import Arbiter
        from tornado.ioloop import IOLoop
        import zmq.asyncio

        from fannode.node import control as control_server
        from fannode.node.orphans import patch_circus

        patch_circus()
        logging.getLogger('tornado.application').addFilter(_no_conflicts)
        self.loop = IOLoop.current()
        self.arbiter = Arbiter([], endpoints[0], endpoints[1], check_delay=CHECK_DELAY, loop=self.loop,
                               multicast_endpoint='', proc_name='fannode up')
        await self.arbiter.start()
        try:
            for name in self.topology.sockets:
                self.ensure_socket(name)
        except FannodeError:
            await retry_conflict(self.arbiter.stop)
            raise
        self.install_signals()
        context = zmq.asyncio.Context.instance()
        self.probe = ready.probe_for(self.topology.registry, context)
        self.forwarder = childlogs.Forwarder(self.log_hub_url())
        tasks = [asyncio.ensure_future(t) for t in (
            self.readiness(), control_server.serve(self, control, context), self.watch_file())]
        await self.start_all()
        await self.stop_requested.wait()
        for task in tasks:
            task.cancel()
        await self.shutdown()
        if self.probe is not None:
            self.probe.close()
        return 0

    def install_signals(self) -> None:
        # after arbiter.start: circus installs handlers of its own there
        self.stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: its terminal closed
            loop.add_signal_handler(signum, self.on_signal)

    def on_signal(self) -> None:
        if not self.stop_requested.is_set():
            self.stop_requested.set()
            self.printer.event('stopping: services finish running work (signal again to kill now)')
        else:
            self.kill_now = True
            self.kill_all()

    def kill_all(self) -> None:
        for block in self.blocks.values():
            for pid in list(block.index):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def log_hub_url(self) -> str:
        """Where the children's records go: the cluster's hub, or this node's log hub."""
        for url in (self.topology.registry, self.topology.events):
            if url.startswith('hub://'):
                return url
        if self.log_port is None:
            self.log_port = ready.free_port()
        return 'hub://127.0.0.1:%d' % self.log_port

    def hub_spec(self) -> InstanceSpec:
        """The hub the node runs: the cluster's, or (ZooKeeper and RabbitMQ) a log hub
        that registers in discovery as fannode.logs, reachable from other machines."""
        import shlex
        from fannode.hub.client import hub_endpoint
        t = self.topology
        if t.runs_log_hub:
            self.log_hub_url()
            argv = ('fannode', 'hub', '--logs-only', '--listen', '0.0.0.0:%d' % self.log_port,
                    '--registry', t.registry)
            address = '127.0.0.1:%d' % self.log_port
        else:
            url = t.registry if t.registry.startswith('hub://') else t.events  # where it listens
            argv = ('fannode', 'hub', '--registry', url)
            address = hub_endpoint(url)[len('tcp://'):]
        return InstanceSpec(name=HUB_BLOCK, command=shlex.join(argv), argv=argv, numprocesses=1,
                            ready=ReadyCheck('tcp', address, 30.0), stop_timeout=5.0)

    async def start_all(self) -> None:
        waves = self.topology.start_waves()
        specs = dict(self.topology.instances)
        if self.topology.hosts_hub or self.topology.runs_log_hub:
            # Started beside the first wave rather than before it: instances wait for
            # an absent hub, and the hub's start-up then overlaps theirs.
            waves = [[HUB_BLOCK] + (waves[0] if waves else [])] + waves[1:]
            specs[HUB_BLOCK] = self.hub_spec()
        for wave in waves:  # every block listed at once, so `fannode ps` shows the waiting ones
            for name in wave:
                self.blocks[name] = Block(self, specs[name])
        for wave in waves:
            if self.stop_requested.is_set():
                return
            for name in wave:
                await self.launch(self.blocks[name])
            await self.wait_ready(wave)
        self.starting = False

    async def wait_ready(self, names: list[str]) -> None:
        blocks = [self.blocks[n] for n in names if n in self.blocks]
        deadline = time.monotonic() + max((b.spec.ready.timeout for b in blocks), default=0)
        while not all(b.is_ready or b.failed for b in blocks):
            if self.stop_requested.is_set():
                return
            if time.monotonic() > deadline:
                late = ', '.join(b.name for b in blocks if not b.is_ready)
                self.printer.error('%s not ready after %gs; starting what depends on it anyway' % (
                    late, max(b.spec.ready.timeout for b in blocks)))
                return
            await asyncio.sleep(POLL / 2)

    async def add(self, spec: InstanceSpec) -> None:
        self.blocks[spec.name] = block = Block(self, spec)
        await self.launch(block)

    async def launch(self, block: Block) -> None:
        spec = block.spec
        problem = block.missing_command()
        if problem:
            block.failed = problem
            self.printer.error('%s: %s' % (spec.name, problem))
            return
        try:
            for name in spec.sockets:
                self.ensure_socket(name)
        except FannodeError as e:
            block.failed = str(e)
            self.printer.error('%s: %s' % (spec.name, e))
            return
        watcher = block.make_watcher()
        block.watcher = watcher
        self.register(watcher)
        await retry_conflict(watcher.start)

    def register(self, watcher) -> None:
        # Arbiter.add_watcher builds the Watcher itself from options; ours has hooks and
        # streams that are objects, so it is registered the way add_watcher would.
        watcher.initialize(self.arbiter.evpub_socket, self.arbiter.sockets, self.arbiter)
        self.arbiter.watchers.append(watcher)
        self.arbiter._watchers_names[watcher.name.lower()] = watcher

    def ensure_socket(self, name: str) -> None:
        from circus.sockets import CircusSocket
        if name not in self.arbiter.sockets:
            spec = self.topology.sockets[name]
            sock = CircusSocket(spec.name, spec.host, spec.port)
            try:
                sock.bind_and_listen()
            except OSError as e:
                sock.close()
                raise FannodeError("cannot listen on socket '%s' (%s:%d): %s"
                                   % (name, spec.host, spec.port, e.strerror)) from None
            self.arbiter.sockets[name] = sock

    async def remove(self, name: str) -> None:
        block = self.blocks.pop(name)
        if block.watcher is None:
            return
        await retry_conflict(lambda: self.arbiter.rm_watcher(name))
        block.out.close()
        block.err.close()

    async def shutdown(self) -> None:
        """Services first (they unregister and finish their work), the hub last."""
        self.stopping = True
        names = [n for n in self.blocks if n != HUB_BLOCK]
        await asyncio.gather(*(self.stop_block(n) for n in names))
        if HUB_BLOCK in self.blocks:
            await self.stop_block(HUB_BLOCK)
        await retry_conflict(self.arbiter.stop)
        if self.forwarder is not None:
            self.forwarder.close()
        self.printer.event('stopped')

    async def stop_block(self, name: str) -> None:
        block = self.blocks[name]
        if block.watcher is not None and not self.kill_now:
            await retry_conflict(block.watcher.stop)

    def forget(self, pid: int) -> None:
        if self.probe is not None and not self.stopping:
            asyncio.ensure_future(self._forget(pid))

    async def _forget(self, pid: int) -> None:
        """Take a dead instance out of discovery now, rather than when its lease ends."""
        await self.probe.forget(pid, self.host)

    # -- readiness -------------------------------------------------------------

    async def readiness(self) -> None:
        while True:
            pending = [b for b in self.blocks.values() if b.watcher is not None and not b.is_ready]
            registered: dict[int, list[str]] = {}
            if self.probe is not None and any(b.spec.ready.kind == 'registered' for b in pending):
                registered = await self.probe.registered_pids()
            for block in list(self.blocks.values()):
                block.forget_removed()
            for block in pending:
                was = block.ready_since
                await block.check_ready(registered)
                if block.is_ready and was is None:
                    block.ready_since = time.monotonic()
                    self.printer.event('%s ready: %d/%d' % (block.name, block.target, block.desired), 'green')
            for block in self.blocks.values():
                if not block.is_ready:
                    block.ready_since = None
            self.announce()
            await asyncio.sleep(POLL)

    def announce(self) -> None:
        """Say "cluster ready" each time everything has become ready (again)."""
        all_ready = not self.starting and all(b.is_ready or b.failed for b in self.blocks.values())
        if all_ready and not self.announced:
            self.announced = True
            failed = [b.name for b in self.blocks.values() if b.failed]
            summary = ', '.join('%s %d/%d' % (b.name, b.running, b.desired) for b in self.blocks.values()
                                if b.name != HUB_BLOCK)
            took = time.monotonic() - self.started
            if failed:
                self.printer.error('cluster up with failures in %.1fs: %s; failed: %s' % (
                    took, summary, ', '.join(failed)))
            else:
                self.printer.event('[bold green]cluster ready[/] in %.1fs: %s' % (took, summary))
        elif not all_ready and self.announced:
            self.announced = False
            self.started = time.monotonic()

    # -- live edits ------------------------------------------------------------

    async def watch_file(self) -> None:
        path = self.topology.path
        seen = self._stamp(path)
        while True:
            await asyncio.sleep(0.25)
            stamp = self._stamp(path)
            if stamp != seen:
                seen = stamp
                await self.reload()

    @staticmethod
    def _stamp(path: str) -> tuple:
        try:
            st = os.stat(path)
        except OSError:
            return ()
        return st.st_mtime_ns, st.st_size, st.st_ino

    async def reload(self) -> dict[str, Any]:
        """Re-read node.yml and apply only the difference; a broken file changes nothing."""
        from fannode.exceptions import ConfigError
        from fannode.node.topology import diff, load
        try:
            new = load(self.topology.path)
        except ConfigError as e:
            self.printer.error('%s; still running the previous topology' % e)
            return {'applied': [], 'error': str(e)}
        except OSError as e:
            self.printer.error('cannot read %s: %s; still running the previous topology' % (self.topology.path, e.strerror))
            return {'applied': [], 'error': str(e)}
        changes = diff(self.topology, new)
        for reason in changes.node:
            self.printer.error('%s: not applied; restart `fannode up` for it' % reason)
        if changes.empty:
            return {'applied': [], 'ignored': changes.node}
        applied = changes.describe()
        for line in applied:
            self.printer.event('node.yml changed: %s' % line, 'cyan')
        old = self.topology
        self.topology = new
        if changes.node:  # keep what was not applied as it runs
            self.topology = type(new)(**{**new.__dict__, 'registry': old.registry, 'events': old.events,
                                         'sockets': {**new.sockets, **old.sockets}})
        for name in changes.removed:
            await self.remove(name)
        for name in changes.restarted:
            await self.replace(name, new.instances[name])
        for name in changes.added:
            await self.add(new.instances[name])
        for name, count in changes.scaled.items():
            block = self.blocks[name]
            block.spec = new.instances[name]
            block.scale(count)
        for name in changes.updated:
            self.blocks[name].spec = new.instances[name]
        return {'applied': applied, 'ignored': changes.node}

    # -- control ---------------------------------------------------------------

    def block(self, name: str) -> Block:
        from fannode.exceptions import UsageError
        if name not in self.blocks:
            raise UsageError("no instance block '%s' (have: %s)" % (name, ', '.join(self.blocks) or 'none'))
        return self.blocks[name]

    async def restart(self, name: str) -> None:
        block = self.block(name)
        await self.replace(name, block.spec)
        self.blocks[name].desired = block.desired
        self.blocks[name].sync()

    async def replace(self, name: str, spec: InstanceSpec) -> None:
        """Stop a block and start it anew, in the same place in the order."""
        order = list(self.blocks)
        await self.remove(name)
        await self.add(spec)
        self.blocks = {n: self.blocks[n] for n in order if n in self.blocks}
