"""The node: a circus arbiter, embedded, running the blocks of node.yml.

Each block of `instances:` is one circus watcher plus a Block (fannode.node.block) that
keeps what circus does not. The node starts them in dependency waves, says when the
cluster is ready, applies edits of node.yml and stops everything in order. Everything
runs on one asyncio loop (tornado on top), in the main thread, never under gevent.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import psutil

from fannode.exceptions import FannodeError
from fannode.node import childlogs
from fannode.node import conditions
from fannode.node import autoreload
from fannode.node import edits
from fannode.node import launch
from fannode.node import limitwatch
from fannode.node import liveness
from fannode.node import paths
from fannode.node import preload
from fannode.node import ready
from fannode.node import readyloop
from fannode.node.block import Block
from fannode.node.logfiles import LogFiles
from fannode.node.loopwait import retry_conflict
from fannode.node.orphans import Groups
from fannode.node.rollout import Rollouts
from fannode.node.output import Printer
from fannode.node.topology import HUB_BLOCK, InstanceSpec, ReadyCheck, Topology

if TYPE_CHECKING:
    from circus.arbiter import Arbiter
    from circus.watcher import Watcher
    from tornado.ioloop import IOLoop

CHECK_DELAY = 0.2     # circus finds dead children on this tick
POLL = 0.1            # readiness checks


def _no_conflicts(record: logging.LogRecord) -> bool:
    """circus' periodic check raises ConflictError whenever a command holds the arbiter
    lock, and tornado logs it with a traceback; the check simply runs again next tick."""
    from circus.exc import ConflictError
    return not (record.exc_info and isinstance(record.exc_info[1], ConflictError))


class Node:
    """The blocks of one node.yml, run by one embedded circus arbiter."""

    def __init__(self, topology: Topology, printer: Printer):
        self.topology = topology
        self.printer = printer
        self.directory = os.path.dirname(topology.path)
        self.name = os.uname().nodename
        self.host = socket.gethostname()  # what instances register as
        self.blocks: dict[str, Block] = {}
        self._arbiter: Arbiter | None = None  # made in run(), with the loop
        self.loop: IOLoop | None = None
        self.stopping = False
        self.stop_requested = asyncio.Event()  # bound to the loop on first wait, in run()
        self.kill_now = False
        # from the start of the process: "ready in" includes importing circus
        self.started = time.monotonic() - max(0.0, time.time() - psutil.Process().create_time())
        self.announced = False
        self.starting = True   # no "cluster ready" before the last wave has started
        self.probe: ready.Probe | None = None
        self.forwarder: childlogs.Forwarder | None = None  # children's records to the log hub
        self.log_port: int | None = None  # of the log hub this node runs on ZooKeeper clusters
        self.groups = Groups()  # every child's process group, and the watchdog
        self.preloads = preload.Pool()  # templates of preloaded blocks
        self.changing = asyncio.Lock()  # one change at a time: control requests, node.yml edits
        self.troubles: set[str] = set()  # errors the node's loops reported (each once)
        self.rechecked = 0.0  # when ready service instances were last looked up
        self.reload_all = False  # fannode up --reload: blocks running Python restart on source changes
        self.logfiles = LogFiles(self.printer.error)  # blocks' output to files (node.yml `logs:`)
        self.rollouts = Rollouts(self)  # rolling replace and rollback (fannode.node.rollout)

    @property
    def arbiter(self) -> Arbiter:
        """circus' arbiter: run() starts it before any block or socket is made."""
        assert self._arbiter is not None, 'the node is not running'
        return self._arbiter

    # -- running ---------------------------------------------------------------

    async def run(self, endpoints: tuple[str, str], control: str) -> int:
        from fannode.node.reapwatcher import ReapingArbiter as Arbiter
        from tornado.ioloop import IOLoop
        import zmq.asyncio

        from fannode.node import control as control_server
        from fannode.node.orphans import patch_circus
        from fannode.node import prometheus

        patch_circus()
        logging.getLogger('tornado.application').addFilter(_no_conflicts)
        self.loop = IOLoop.current()
        self._arbiter = Arbiter([], endpoints[0], endpoints[1], check_delay=CHECK_DELAY, loop=self.loop,
                                multicast_endpoint='', proc_name='fannode up')
        self.groups.start_watchdog()  # before the first child
        mask = os.umask(0o177)  # circus' endpoints run any command sent to them: ours alone
        try:
            await self.arbiter.start()
        finally:
            os.umask(mask)
        for endpoint in endpoints:
            paths.private_file(endpoint[len('ipc://'):])
        try:
            for name in self.topology.sockets:
                self.ensure_socket(name)
            exporter = prometheus.Exporter(self) if self.topology.metrics else None  # /metrics
        except FannodeError:
            await retry_conflict(self.arbiter.stop)
            raise
        self.install_signals()
        context = zmq.asyncio.Context.instance()
        self.probe = ready.probe_for(self.topology.registry, context)
        self.forwarder = childlogs.Forwarder(self.log_hub_url())
        tasks = [asyncio.ensure_future(t) for t in (readyloop.readiness(self), self.sweeping(),
                                                    control_server.serve(self, control, context), edits.watch(self),
                                                    autoreload.watch(self), conditions.cascade(self))]
        tasks += [asyncio.ensure_future(liveness.watch(self)), asyncio.ensure_future(limitwatch.watch(self))]
        if exporter is not None:
            tasks.append(asyncio.ensure_future(exporter.gathering()))
        await self.start_all()
        await self.stop_requested.wait()
        for task in tasks:
            task.cancel()
        await self.rollouts.stop()  # then what the node's tasks started ends before the stop
        await asyncio.wait(tasks, timeout=10.0)
        await self.shutdown()
        if self.probe is not None:
            self.probe.close()
        return 0

    def install_signals(self) -> None:
        # after arbiter.start: circus installs handlers of its own there
        if threading.current_thread() is not threading.main_thread():
            return  # the dashboard's main thread has them (fannode.tui.nodeapp)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: its terminal closed
            loop.add_signal_handler(signum, self.on_signal, signum)

    def on_signal(self, signum: int = signal.SIGINT) -> None:
        if not self.stop_requested.is_set():
            self.stop_requested.set()
            self.printer.event('stopping: services finish running work (signal again to kill now)')
        elif signum != signal.SIGTERM:  # a second SIGTERM (`fannode down` twice) is the same graceful stop
            self.kill_now = True
            self.kill_all()

    def kill_all(self) -> None:
        self.groups.kill_all()  # every process and what it started

    def log_hub_url(self) -> str:
        """Where the children's records go: the cluster's hub, or this node's log hub."""
        for url in (self.topology.registry, self.topology.events):
            if url.startswith('hub://'):
                return url
        return 'hub://127.0.0.1:%d' % self.log_hub_port()

    def log_hub_port(self) -> int:
        if self.log_port is None:
            self.log_port = ready.free_port()
        return self.log_port

    def hub_spec(self) -> InstanceSpec:
        """The hub the node runs: the cluster's, or (ZooKeeper and RabbitMQ) a log hub
        that registers in discovery as fannode.logs, reachable from other machines."""
        import shlex
        from fannode.hub.client import hub_endpoint
        t = self.topology
        argv: tuple[str, ...]
        if t.runs_log_hub:
            port = self.log_hub_port()
            argv = ('fannode', 'hub', '--logs-only', '--listen', '0.0.0.0:%d' % port, '--registry', t.registry)
            address = '127.0.0.1:%d' % port
        else:
            url = t.registry if t.registry.startswith('hub://') else t.events  # where it listens
            argv = ('fannode', 'hub', '--registry', url)
            address = hub_endpoint(url)[len('tcp://'):]
        return InstanceSpec(name=HUB_BLOCK, command=shlex.join(argv), argv=argv, numprocesses=1,
                            ready=ReadyCheck('tcp', address, 30.0), stop_timeout=5.0, logs=t.logs)

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
                launch.template(self.blocks[name])  # its imports overlap the hub's start
        await conditions.start(self, waves)  # each block once its depends_on conditions hold
        self.starting = False

    async def add(self, spec: InstanceSpec) -> None:
        self.blocks[spec.name] = block = Block(self, spec)
        await self.launch(block)

    async def launch(self, block: Block) -> None:
        spec = block.spec
        problem = launch.missing_command(block)
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
        await launch.template_ready(block)  # a preloaded block's imports, the loop free meanwhile
        if self.stop_requested.is_set() or self.blocks.get(spec.name) is not block:
            return  # stopped or replaced while it waited
        watcher = launch.make_watcher(block)
        block.watcher = watcher
        self.register(watcher)
        await retry_conflict(watcher.start)

    def register(self, watcher: Watcher) -> None:
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
        for wave in conditions.stop_waves(self):  # the reverse of the start order
            await asyncio.gather(*(self.stop_block(n) for n in wave))
        if HUB_BLOCK in self.blocks:
            await self.stop_block(HUB_BLOCK)
        await retry_conflict(self.arbiter.stop)
        self.preloads.close()
        await self.groups.drain()  # what the processes started and left behind
        limitwatch.close()  # cgroups left, and the node's leaf
        if self.forwarder is not None:
            self.forwarder.close()
        self.logfiles.close()
        self.printer.event('stopped')

    async def stop_block(self, name: str) -> None:
        block = self.blocks.get(name)
        if block is not None and block.watcher is not None and not self.kill_now:
            await retry_conflict(block.watcher.stop)

    def forget(self, pid: int) -> None:
        """Take a dead instance out of discovery now, rather than when its lease ends."""
        if self.probe is not None and not self.stopping:
            asyncio.ensure_future(self.probe.forget(pid, self.host))

    async def sweeping(self) -> None:
        """A group whose process is gone (killed, scaled away, its block removed) is
        stopped: what that process started goes with it."""
        while True:
            try:
                self.groups.sweep({pid for block in self.blocks.values() for pid in block.index})
                launch.keep_templates(self)
            except Exception as e:
                self.trouble('stopping process groups', e)
            await asyncio.sleep(POLL)

    def trouble(self, what: str, e: Exception) -> None:
        """An unexpected error in one of the node's loops: said once, logged, and the loop goes on."""
        text = '%s: %s: %s' % (what, type(e).__name__, e)
        logging.getLogger(__name__).debug(text, exc_info=True)
        if text not in self.troubles and len(self.troubles) < 100:  # then the log only
            self.troubles.add(text)
            self.printer.error('%s; going on' % text)

    # -- live edits (fannode.node.edits) --------------------------------------

    async def reload(self) -> dict[str, Any]:
        """Re-read node.yml and apply only the difference (`fannode reload`)."""
        return await edits.reload(self)

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
