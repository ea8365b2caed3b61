"""Liveness probes (node.yml `liveness:`, read by fannode.node.livecheck): a process that
fails `failures` probes in a row is stopped (SIGTERM and SIGCONT to its group, SIGKILL after
stop_timeout) and replaced at once, under the same worker index.

Every probe runs on the node's asyncio loop with a timeout and never blocks it: `rpc: ping`
is one fannode request over a DEALER kept per instance (zmq.asyncio, as the readiness probe
speaks to the hub), http and tcp are asyncio connections, exec a child whose exit status
comes back on a pipe (circus reaps every child of the node, so the status of a wait would
be lost). A process is probed once it is ready and `initial_delay` has passed since it
started; each probe starts `period` after the one before, so a process that stops answering
is replaced within period × failures + timeout.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from typing import Any, Protocol

import zmq
import zmq.asyncio

from fannode.node import dealer, ready
from fannode.node.livecheck import Liveness
from fannode.node.orphans import signal_group
from fannode.node.spec import InstanceSpec


class Block(Protocol):
    """What probes use of a block (fannode.node.block.Block, which imports this module)."""

    name: str
    spec: InstanceSpec
    node: Any
    index: dict[int, int]
    since: dict[int, float]
    ready_pids: set[int]
    alive: set[int]
    watcher: Any
    last_exit: str
    restarts: int
    gone: int
    desired: int
    exits: list[int | None]
    failed: str | None

    @property
    def live(self) -> set[int]: ...

    def stop_process(self, pid: int) -> None: ...

    def sync(self) -> None: ...

TICK = 0.1           # how often due probes are looked for
LOOKUP = 0.5         # endpoints of new instances are asked for at most this often
# the command's own exit status, on a pipe: the node never waits for it (circus reaps it)
_EXEC = '"$@" </dev/null >/dev/null 2>&1; echo "$?"'


def describe(check: Liveness | None) -> dict[str, Any] | None:
    """What `fannode ps --json` shows of a block's probe."""
    if check is None:
        return None
    return {'probe': check.describe(), 'period': check.period, 'timeout': check.timeout,
            'failures': check.failures, 'initial_delay': check.initial_delay}


class Prober:
    def __init__(self, node: Any):
        self.node = node
        self.context = zmq.asyncio.Context.instance()
        self.sockets: dict[str, zmq.asyncio.Socket] = {}   # endpoint → DEALER
        self.endpoints: dict[int, tuple[str, str]] = {}    # pid → (endpoint, service)
        self.due: dict[int, float] = {}                    # pid → when its next probe starts
        self.failures: dict[int, int] = {}                 # pid → failed probes in a row
        self.running: dict[int, asyncio.Future[None]] = {}
        self.looked_up = 0.0

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.tick()
                except Exception as e:  # a bug here must not end the probes for good
                    self.node.trouble('liveness', e)
                await asyncio.sleep(TICK)
        finally:
            for task in self.running.values():
                task.cancel()
            for sock in self.sockets.values():
                sock.close(linger=0)

    async def tick(self) -> None:
        now = time.monotonic()
        seen: set[int] = set()
        unknown = False  # a ready instance whose endpoint the node has not looked up yet
        for block in list(self.node.blocks.values()):
            check = block.spec.liveness
            if check is None or block.watcher is None or self.node.stopping:
                continue
            for pid in block.live:
                seen.add(pid)
                if (pid not in block.ready_pids or pid in self.running
                        or now < block.since.get(pid, now) + check.initial_delay):
                    continue
                if check.kind == 'rpc' and pid not in self.endpoints:
                    unknown = True
                    continue
                due = self.due.setdefault(pid, now)
                if now >= due:
                    # on the period's beat, unless the loop fell behind it
                    self.due[pid] = due + check.period if now - due < check.period else now + check.period
                    self.running[pid] = asyncio.ensure_future(self.probe(block, pid, check))
        for pid in (set(self.due) | set(self.failures) | set(self.endpoints)) - seen:
            self.due.pop(pid, None)
            self.failures.pop(pid, None)
            self.endpoints.pop(pid, None)
        for endpoint in set(self.sockets) - {e for e, _ in self.endpoints.values()}:
            self.sockets.pop(endpoint).close(linger=0)
        if unknown and self.node.probe is not None and now - self.looked_up >= LOOKUP:
            self.looked_up = now
            found = await self.node.probe.endpoints(self.node.host)
            self.endpoints.update((pid, found[pid]) for pid in seen if pid in found)

    async def probe(self, block: Block, pid: int, check: Liveness) -> None:
        try:
            why = await self.attempt(block, pid, check)
        except Exception as e:  # a probe that cannot run fails; said once, not every period
            self.node.trouble('liveness probe of %s' % block.name, e)
            why = 'probe error: %s' % (str(e) or type(e).__name__)
        finally:
            self.running.pop(pid, None)
        if pid not in block.live or self.node.stopping:
            return
        if why is None:
            self.failures[pid] = 0
            block.alive.add(pid)
            return
        block.alive.discard(pid)
        count = self.failures[pid] = self.failures.get(pid, 0) + 1
        if count >= check.failures:
            self.failures.pop(pid, None)
            self.due.pop(pid, None)
            try:
                fail(block, pid, 'liveness failed: %s (%d in a row)' % (why, count))
            except Exception as e:  # a task of its own: nobody else would hear of it
                self.node.trouble('liveness', e)

    async def attempt(self, block: Block, pid: int, check: Liveness) -> str | None:
        """None when the process passed; else what went wrong."""
        timeout = check.timeout
        if check.kind == 'rpc':
            endpoint, service = self.endpoints[pid]
            return await self.ping(endpoint, service, timeout)
        if check.kind == 'tcp':
            assert isinstance(check.target, (str, int))
            host, port = ready.tcp_target(check.target)
            if await ready.tcp_open(host, port, timeout):
                return None
            return 'tcp %s:%d not accepting within %gs' % (host, port, timeout)
        if check.kind == 'http':
            url = self.http_url(block, str(check.target))
            try:
                if await asyncio.wait_for(ready.http_ok(url, timeout), timeout):
                    return None
            except asyncio.TimeoutError:
                pass
            return 'http %s gave no answer below 500 within %gs' % (url, timeout)
        assert isinstance(check.target, tuple)
        return await self.run_exec(block, pid, check.target, timeout)

    def http_url(self, block: Block, target: str) -> str:
        if target.startswith('/'):
            port = self.node.topology.sockets[block.spec.sockets[0]].port
            return 'http://127.0.0.1:%d%s' % (port, target)
        return target

    async def ping(self, endpoint: str, service: str, timeout: float) -> str | None:
        sock = self.sockets.get(endpoint)
        if sock is None:
            sock = self.sockets[endpoint] = self.context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
        try:  # any answer (even a refusal while stopping) shows it runs
            await dealer.request(sock, service + '.ping', {}, timeout, ack=True)
            return None
        except asyncio.TimeoutError:
            return 'rpc ping timed out after %gs' % timeout
        except zmq.ZMQError as e:
            self.sockets.pop(endpoint).close(linger=0)
            return 'rpc ping failed: %s' % e

    async def run_exec(self, block: Block, pid: int, argv: tuple[str, ...], timeout: float) -> str | None:
        command = list(argv)
        if os.sep in command[0] and not os.path.isabs(command[0]):
            command[0] = os.path.join(self.node.directory, command[0])  # as for the block's command
        env = dict(os.environ)
        env.update(block.spec.env_dict())  # may name FANNODE_* too: the node's own win
        env.update(FANNODE_PID=str(pid), FANNODE_WORKER_INDEX=str(block.index.get(pid, 0)), FANNODE_BLOCK=block.name)
        try:
            child = subprocess.Popen(['/bin/sh', '-c', _EXEC, 'sh', *command], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                     cwd=block.spec.cwd or self.node.directory, start_new_session=True)
        except OSError as e:
            return 'exec %s: %s' % (argv[0], e.strerror)
        assert child.stdout is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), child.stdout)
        try:
            out = await asyncio.wait_for(reader.read(), timeout)
        except asyncio.TimeoutError:
            signal_group(child.pid, signal.SIGKILL)
            return 'exec %s timed out after %gs' % (argv[0], timeout)
        finally:
            transport.close()
            await reaped(child)
        status = out.strip()
        if status == b'0':
            return None
        if status.isdigit() and int(status) == 127:
            return 'exec %s: command not found' % argv[0]
        return 'exec %s exited with status %s' % (argv[0], status.decode(errors='replace') or '?')


async def reaped(child: subprocess.Popen[bytes], wait: float = 1.0) -> None:
    """Reaped here or by circus (then poll() sees ECHILD): either way no zombie is left,
    and Popen has its returncode (without one it warns that the child still runs)."""
    deadline = time.monotonic() + wait
    while child.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def fail(block: Block, pid: int, reason: str) -> None:
    """Stop a process that failed its probe; the block starts its replacement at once."""
    index = block.index.get(pid, 0)
    block.last_exit = reason
    if block.spec.restart == 'never':
        block.gone += 1
        block.exits.append(None)  # an outcome, and no success: `completed_successfully` is not met
        if block.gone >= block.desired:
            block.failed = '%s (restart: never)' % reason
        block.node.printer.event('%s.%d %s; not restarted (restart: never)' % (block.name, index, reason), 'yellow')
    else:
        block.restarts += 1
        block.node.printer.event('%s.%d %s; restarting' % (block.name, index, reason), 'yellow')
    block.stop_process(pid)
    signal_group(pid, signal.SIGCONT)  # a stopped process takes its SIGTERM only once it runs
    if block.spec.port is None:  # a Procfile's PORT is the index's: its reap starts the replacement
        block.sync()


async def watch(node: Any) -> None:
    await Prober(node).run()
