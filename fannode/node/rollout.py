"""Rolling replace and rollback of one block: its processes replaced a few at a time, each
new one ready before an old one is stopped, so the block never serves with fewer.

During a rollout the new spec runs as a second Block with a watcher of its own (under
`NAME@next`, a name node.yml cannot use; its processes print and register as NAME), scaled
up `surge` at a time while the old Block is scaled down, lowest worker index first: new
process i takes index i. At the end the new Block takes the name. A new process that exits,
or is not ready in time, ends the rollout: the old Block is scaled back to what it ran,
then the new processes are stopped (fannode.node.rolloutspec decides when a change rolls).
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, Protocol

from fannode.exceptions import UsageError
from fannode.node import capacity
from fannode.node import inturn
from fannode.node import launch
from fannode.node import rollback
from fannode.node import rolloutstatus
from fannode.node.block import Block, NodeView
from fannode.node.client import Busy
from fannode.node.loopwait import retry_conflict, until
from fannode.node.rolloutspec import RolloutSpec
from fannode.node.topology import HUB_BLOCK, InstanceSpec, Topology

NEXT = rolloutstatus.NEXT  # the new spec's key in node.blocks while it rolls out
POLL = 0.05
CHANGES = ('node.scale', 'node.restart', 'node.restart_process', 'node.reload', 'node.rollout', 'node.rollback')
ENDED = 20  # ended rollouts kept for `fannode ps`


class Rolled(NodeView, Protocol):
    """What a rollout uses of the node (fannode.node.supervisor.Node)."""

    blocks: dict[str, Block]
    topology: Topology
    changing: asyncio.Lock
    stop_requested: asyncio.Event

    def ensure_socket(self, name: str) -> None: ...

    def register(self, watcher: Any) -> None: ...

    async def remove(self, name: str) -> None: ...

    async def replace(self, name: str, spec: InstanceSpec) -> None: ...


class Failed(Exception):
    """The new processes did not become ready: why, in a few words."""


@dataclasses.dataclass
class Rollout:
    id: int
    name: str
    kind: str         # 'node.yml', 'rollout' (`fannode rollout`, autoreload), 'rollback'
    source: str       # what runs now, as a label: its version or 'the previous spec'
    target: str
    total: int
    done: int = 0
    state: str = 'waiting'  # 'waiting', 'running', 'done', 'rolled back', 'failed', 'stopped'
    error: str | None = None
    started: float = dataclasses.field(default_factory=time.monotonic)
    took: float | None = None
    # node.yml's spec; None: the block's own when it runs (rollout) or the one before (rollback)
    spec: InstanceSpec | None = dataclasses.field(default=None, repr=False)
    in_turn: bool = False  # in its own watcher, a process at a time (fannode.node.inturn)

    def as_dict(self) -> dict[str, Any]:
        return {'id': self.id, 'kind': self.kind, 'state': self.state, 'done': self.done,
                'total': self.total, 'from': self.source, 'to': self.target, 'error': self.error,
                'seconds': round(self.took if self.took is not None else time.monotonic() - self.started, 1)}


class Rollouts:
    """The rollouts of one node: the one running per block, the last one, and the spec
    each block ran before its last replace (what `fannode rollback` goes back to)."""

    def __init__(self, node: Rolled):
        self.node = node
        self.previous: dict[str, InstanceSpec] = {}
        self.last: dict[str, Rollout] = {}    # what ps shows: the one running, else the last
        self.queued: dict[str, Rollout] = {}  # one waiting per block, behind the change lock
        self.ended: list[Rollout] = []
        self.ids = 0
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> list[Rollout]:
        return [r for r in [*self.last.values(), *self.queued.values()] if r.state in ('waiting', 'running')]

    def refuse_busy(self, subject: str) -> None:
        """A change while a rollout runs would wait for its end (the node's change lock):
        said at once instead."""
        if subject in CHANGES and self.running:
            r = self.running[0]
            raise Busy('%s is rolling out (%d/%d replaced); try again when it is done'
                       % (r.name, r.done, r.total))

    async def stop(self) -> None:
        """The node is stopping: the rollouts end where they are (the shutdown stops both sets)."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for rollout in self.running:  # those cancelled before they began
            rollout.state = 'stopped'

    def begin(self, name: str, spec: InstanceSpec, kind: str, in_turn: bool = False) -> Rollout:
        """Start replacing block `name` with `spec` (kind node.yml; else what it runs when
        its turn comes); UsageError when it cannot roll. One waiting for the same block is
        joined rather than queued behind: it replaces with the newest spec."""
        node = self.node
        block = node.blocks.get(name)
        in_turn = in_turn or spec.port is not None  # a second set would take the same PORTs
        waiting = self.queued.get(name)
        if waiting is not None and waiting.state == 'waiting':
            if kind == 'node.yml':
                waiting.kind, waiting.spec, waiting.in_turn = kind, spec, in_turn
            return waiting
        if not any(r.name == name for r in self.running):  # else looked at once that one is over
            check(node, block, name, spec)
        self.ids += 1
        rollout = Rollout(self.ids, name, kind, *_labels(block.spec if block else spec, spec), spec.numprocesses,
                          spec=spec if kind == 'node.yml' else None, in_turn=in_turn)
        self.queued[name] = rollout
        current = self.last.get(name)
        if current is None or current.state not in ('waiting', 'running'):
            self.last[name] = rollout  # ps shows it waiting; else once the one running ends
        task = asyncio.ensure_future(self.run(rollout))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return rollout

    async def run(self, rollout: Rollout) -> None:
        node = self.node
        try:
            async with node.changing:  # after the edit or request that began it is answered
                if self.queued.get(rollout.name) is rollout:
                    del self.queued[rollout.name]
                self.last[rollout.name] = rollout
                await self.run_locked(rollout)
        except asyncio.CancelledError:  # the node is stopping
            if rollout.state in ('waiting', 'running'):
                rollout.state = 'stopped'
            raise
        finally:
            rollout.took = time.monotonic() - rollout.started
            self.ended = (self.ended + [rollout])[-ENDED:]

    def spec_of(self, rollout: Rollout, block: Block) -> InstanceSpec | None:
        """What it replaces with, looked at once it holds the lock: node.yml's, or for
        `fannode rollout` (and autoreload) what the block runs now, at the count it runs."""
        if rollout.spec is not None:
            return rollout.spec
        spec = block.spec if rollout.kind == 'rollout' else self.previous.get(rollout.name)
        return None if spec is None else dataclasses.replace(spec, numprocesses=block.desired)

    async def run_locked(self, rollout: Rollout) -> None:
        node = self.node
        old = node.blocks.get(rollout.name)
        if old is None or old.watcher is None or node.stop_requested.is_set():
            rollout.state = 'stopped'
            return
        spec = self.spec_of(rollout, old)
        try:  # again: it may have waited behind another rollout of the block
            if spec is None:
                raise UsageError('%s: no previous spec to roll back to' % rollout.name)
            check(node, old, rollout.name, spec)
        except UsageError as e:
            rollout.state, rollout.error = 'failed', str(e)
            if rollout.kind == 'node.yml' and spec is not None:  # what node.yml says still applies
                node.printer.error('%s; restarting it instead' % e)
                await node.replace(rollout.name, spec)
            return
        rollout.source, rollout.target = _labels(old.spec, spec)
        rollout.state, rollout.total, original = 'running', spec.numprocesses, old.desired
        if rollout.in_turn:
            why = await inturn.replace(node, rollout, old)
            rollout.state, rollout.error = ('failed', why) if why else ('done', None)
            if node.stop_requested.is_set():
                rollout.state = 'stopped'
            return
        try:
            await self.replace(rollout, old, spec)
        except Exception as e:  # a bug: said, and the old spec's count is asked for again
            rollout.state, rollout.error = 'rolled back', '%s: %s' % (type(e).__name__, e)
            node.printer.error('%s: rollout failed: %s; the previous spec runs' % (rollout.name, rollout.error))
            if not node.stop_requested.is_set() and node.blocks.get(rollout.name) is old:
                old.scale(max(old.desired, original))
                if rollout.name + NEXT in node.blocks:
                    await node.remove(rollout.name + NEXT)

    async def replace(self, rollout: Rollout, old: Block, spec: InstanceSpec) -> None:
        node, name = self.node, rollout.name
        settings = spec.rollout or RolloutSpec()
        timeout = settings.timeout or spec.ready.timeout
        original = old.desired
        node.printer.event('%s: %s %s → %s (%d processes, %d at a time%s)' % (
            name, 'rolling back' if rollout.kind == 'rollback' else 'rolling out', rollout.source,
            rollout.target, rollout.total, settings.surge,
            '' if rollout.kind == 'node.yml' else '; fannode %s' % rollout.kind), 'cyan')
        order = list(node.blocks)
        new = Block(node, spec)
        new.desired = min(rollout.total, settings.surge)  # circus starts no watcher of 0 processes
        node.blocks[name + NEXT] = new
        try:
            await self.launch(new, name + NEXT)
            while True:
                await self.until_ready(new, timeout)
                keep = 0 if new.desired >= rollout.total else max(0, original - new.desired)
                self.stop_old(old, keep)
                rollout.done = new.desired
                node.printer.event('%s: %d/%d replaced' % (name, rollout.done, rollout.total), 'cyan')
                if new.desired >= rollout.total:
                    break
                new.desired = min(rollout.total, new.desired + settings.surge)
                new.sync()
        except Failed as e:
            if node.stop_requested.is_set():
                rollout.state = 'stopped'
                return
            await self.roll_back(rollout, old, new, original, str(e))
            return
        await until(lambda: not old.index, old.spec.stop_timeout + 5.0, self.stopped)  # the last old ones leave
        if node.stop_requested.is_set():
            rollout.state = 'stopped'
            return
        await node.remove(name)
        self.rename(new, name, order)
        self.previous[name] = old.spec
        self.set_spec(name, spec, rollout.kind != 'node.yml')
        rollout.state = 'done'
        node.printer.event('%s: rolled out %s, %d/%d replaced in %.1fs' % (
            name, rollout.target, rollout.done, rollout.total, time.monotonic() - rollout.started), 'green')

    async def launch(self, block: Block, key: str) -> None:
        problem = launch.missing_command(block)
        if problem:
            raise Failed(problem)
        for sock in block.spec.sockets:
            self.node.ensure_socket(sock)
        await launch.template_ready(block)  # a preloaded block's imports, the loop free meanwhile
        watcher = launch.make_watcher(block)
        watcher.name = key  # its own name in circus; its processes still say the block's
        block.watcher = watcher
        self.node.register(watcher)
        await retry_conflict(watcher.start)

    async def until_ready(self, new: Block, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not (new.is_ready and new.running >= new.desired):
            if self.node.stop_requested.is_set():
                raise Failed('the node is stopping')
            if new.failed or new.restarts or new.gone:
                raise Failed(new.last_exit and '%s.%s %s' % (
                    new.name, _last_index(new), new.last_exit) or new.failed or 'a new process exited')
            if time.monotonic() > deadline:
                pending = new.desired - len(new.ready_pids & new.live)
                raise Failed('%d new process%s not ready within %gs' % (
                    pending, '' if pending == 1 else 'es', timeout))
            await asyncio.sleep(POLL)

    def stopped(self) -> bool:
        return self.node.stop_requested.is_set()

    def stop_old(self, old: Block, keep: int) -> None:
        """Stop old processes, lowest worker index first, until `keep` are wanted."""
        while old.desired > keep:
            live = sorted(old.live, key=lambda pid: old.index[pid])
            if live and len(live) >= old.desired:  # one restarting counts as one fewer to stop
                old.stop_process(live[0])
            old.desired -= 1
        old.sync()

    async def roll_back(self, rollout: Rollout, old: Block, new: Block, original: int, why: str) -> None:
        """The old spec back to the count it ran, ready, before the new processes stop."""
        node, name = self.node, rollout.name
        rollout.state, rollout.error = 'rolled back', why
        node.printer.event('%s: rollout to %s failed: %s; rolling back' % (name, rollout.target, why), 'yellow')
        # The new processes that are not ready stop now (a crash loop is not restarted
        # meanwhile); those ready serve on until the old ones are back.
        for pid in sorted(new.live - new.ready_pids):
            new.stop_process(pid)
        new.held = new.gone = 0
        new.desired = len(new.ready_pids & new.live)
        new.sync()
        old.scale(original)
        await rollback.wait_back(self, rollout, old, new, original, why)

    def rename(self, new: Block, name: str, order: list[str]) -> None:
        """The new Block takes the name: in circus and in the node's order."""
        arbiter = self.node.arbiter
        watcher = new.watcher
        assert watcher is not None
        arbiter._watchers_names.pop(watcher.name.lower(), None)
        watcher.name = name
        arbiter._watchers_names[name.lower()] = watcher
        blocks = self.node.blocks
        blocks.pop(name + NEXT, None)
        blocks[name] = new
        self.node.blocks = {n: blocks[n] for n in order + list(blocks) if n in blocks}

    def set_spec(self, name: str, spec: InstanceSpec, keep_count: bool) -> None:
        """What node.yml is compared with on its next save is what runs now; after
        `fannode rollout`/`rollback`, with the count node.yml says (a `fannode scale`
        lasts until node.yml changes it)."""
        topology = self.node.topology
        if name in topology.instances and keep_count:
            spec = dataclasses.replace(spec, numprocesses=topology.instances[name].numprocesses)
        if name in topology.instances and topology.instances[name] != spec:
            self.node.topology = dataclasses.replace(topology, instances={**topology.instances, name: spec})

    def statuses(self) -> list[dict[str, Any]]:
        """What `fannode ps` shows of each block (fannode.node.rolloutstatus)."""
        return rolloutstatus.statuses(self)


class Verbs(Protocol):
    """What `fannode rollout` and `fannode rollback` use of the node (control.py's Controlled)."""

    rollouts: Rollouts

    def block(self, name: str) -> Block: ...


def rollout_verb(node: Verbs, subject: str, name: str) -> dict[str, Any]:
    """`node.rollout`: the block's current spec again, a process at a time (a rolling
    restart); `node.rollback`: the spec it ran before its last replace. Answered once
    begun; `fannode ps` follows it."""
    block = node.block(name)
    if block.name == HUB_BLOCK:  # a second hub cannot listen where the first one does
        raise UsageError('the hub cannot run twice: use `fannode restart %s`' % HUB_BLOCK)
    if subject == 'node.rollout':  # at the count it runs, also after a `fannode scale`
        spec, kind = dataclasses.replace(block.spec, numprocesses=block.desired), 'rollout'
    else:
        previous = node.rollouts.previous.get(block.name)
        if previous is None:
            raise UsageError('%s: no previous spec to roll back to (it has not been replaced since '
                             'the node started)' % block.name)
        spec, kind = dataclasses.replace(previous, numprocesses=block.desired), 'rollback'
    return node.rollouts.begin(block.name, spec, kind).as_dict()


def check(node: Rolled, block: Block | None, name: str, spec: InstanceSpec) -> None:
    """UsageError when block `name` cannot be rolled out to `spec` now."""
    if block is None or block.watcher is None:
        raise UsageError('%s: not running, nothing to roll out' % name)
    if name + NEXT in node.blocks and node.blocks[name + NEXT] is not block:  # fannode.node.rollback
        raise UsageError('%s: its last rollback is incomplete (new processes serve until the previous spec '
                         'is ready); try again then' % name)
    if block.failed:
        raise UsageError('%s: failed (%s), nothing serving to replace gradually' % (name, block.failed))
    if spec.numprocesses < 1 or block.desired < 1:
        raise UsageError('%s: 0 processes, nothing to roll out' % name)
    surge = (spec.rollout or RolloutSpec()).surge
    counts = {n: b.desired for n, b in node.blocks.items() if n in node.topology.instances}
    try:
        capacity.check_scale(counts, name, max(block.desired, spec.numprocesses) + surge)
    except UsageError as e:
        raise UsageError('%s (a rolling replace runs %d more at once)' % (e, surge)) from None


def _labels(before: InstanceSpec, spec: InstanceSpec) -> tuple[str, str]:
    """What runs and what replaces it, as said: their versions, or which spec."""
    same = 'the same spec' if dataclasses.replace(spec, numprocesses=before.numprocesses) == before else ''
    return before.version or same or 'the previous spec', spec.version or same or 'the new spec'


def _last_index(block: Block) -> str:
    return str(max(block.failures, key=lambda i: block.failures[i])) if block.failures else '?'
