"""depends_on conditions at run time (node.yml's form is fannode.node.dependson's):

- the start: every block is started once each block it depends on meets its condition:
  `started` (its processes are running), `ready` (its readiness check passed),
  `healthy` (ready, and passing its liveness probe where it has one), or
  `completed_successfully` (a one-shot block whose processes all exited 0; if one
  exited otherwise, the block waiting for it is not started, and says why);
- `restart: true`: when the node restarts a block as a whole (`fannode restart`, an
  edit of node.yml that restarts it, the end of a rollout), its dependents with
  `restart: true` are restarted once, when it meets their condition again, as docker
  compose does on its own operations; a process that dies and is replaced, a liveness
  kill or an autoreload restart no dependent;
- the stop: dependents first, in the reverse of the start order, the hub last.
"""
from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any, Protocol

from fannode.node import launch
from fannode.node.block import Block
from fannode.node.loopwait import until
from fannode.node.output import Printer
from fannode.node.topology import HUB_BLOCK, Topology

POLL = 0.05
NEXT = '@next'  # a rolling block's new processes (fannode.node.rollout), stopped with it
_waiting: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()  # node → names not started yet


class Node(Protocol):
    """What conditions use of the node (fannode.node.supervisor.Node)."""

    blocks: dict[str, Block]
    printer: Printer
    topology: Topology
    stop_requested: asyncio.Event
    stopping: bool
    changing: asyncio.Lock

    async def launch(self, block: Block) -> None: ...

    async def restart(self, name: str) -> None: ...

    def trouble(self, what: str, e: Exception) -> None: ...


def wanted(block: Block) -> list[tuple[str, str, bool]]:
    """Its depends_on with their conditions, and the hard dependencies of its service config (ready)."""
    spec = block.spec
    return list(spec.conditions) + [(dep, 'ready', False) for dep in spec.after
                                    if dep not in spec.depends_on]


def met(dep: Block, condition: str) -> bool | str:
    """True when `dep` meets the condition; a string when it never will (why)."""
    if condition == 'completed_successfully':
        if any(code != 0 for code in dep.exits):
            return '%s %s' % (dep.name, dep.last_exit)
        if dep.failed:
            return '%s failed: %s' % (dep.name, dep.failed)
        # all its processes ran and exited 0: as many outcomes as it wants processes
        # (scaled to 0 before it ran, or killed on purpose, is no completion)
        return (dep.watcher is not None and not dep.live and dep.desired > 0
                and len(dep.exits) >= dep.desired)
    if dep.failed:  # as for a block not ready in time: what depends on it starts anyway
        return True
    if dep.watcher is None:
        return False
    if condition == 'started':
        return dep.running >= dep.target
    return dep.is_healthy if condition == 'healthy' else dep.is_ready


# -- the start ---------------------------------------------------------------------


async def start(node: Node, waves: list[list[str]]) -> None:
    """Each block once its conditions hold; blocks of a wave in file order when they are due at once."""
    launched: dict[str, float] = {}
    late: set[str] = set()
    one_at_a_time = asyncio.Lock()  # first come first served: file order for blocks due at once
    names = [name for wave in waves for name in wave]
    _waiting[node] = set(names)
    try:
        await asyncio.gather(*(_start_when_due(node, name, launched, late, one_at_a_time) for name in names))
    finally:
        _waiting.pop(node, None)


def waiting(node: Any, name: str) -> bool:
    """Block `name` is not started yet: it waits on its depends_on conditions. An edit of
    it changes its spec (swap) and leaves the start to its waiter."""
    block = node.blocks.get(name)
    return name in _waiting.get(node, ()) and block is not None and block.watcher is None


def swap(node: Any, name: str, block: Block) -> None:
    """Block `name`, still waiting, is to start as `block` (an edit of node.yml)."""
    node.blocks[name] = block  # same key: same place in the order


async def _start_when_due(node: Node, name: str, launched: dict[str, float], late: set[str],
                          one_at_a_time: asyncio.Lock) -> None:
    try:
        problem = await due(node, name, launched, late)
        block = node.blocks.get(name)  # an edit may have swapped it meanwhile
        if node.stop_requested.is_set() or block is None or block.watcher is not None:
            return  # removed, or started by someone else
        if problem:
            block.failed = 'not started: %s' % problem
            node.printer.error('%s not started: %s' % (name, problem))
            return
        await launch.template_ready(block)  # outside the lock: a slow import holds up no other block
        async with one_at_a_time:
            block = node.blocks.get(name)
            if block is None or block.watcher is not None or block.failed or node.stop_requested.is_set():
                return
            launched[name] = time.monotonic()
            await node.launch(block)
    finally:
        _waiting.get(node, set()).discard(name)


async def due(node: Node, name: str, launched: dict[str, float], late: set[str]) -> str | None:
    """Wait until every block `name` depends on meets its condition (None), or one never
    will (why). One not ready within its `ready.timeout` of starting is said once and not
    waited for. Its conditions are read anew each time: an edit may change them."""
    while not node.stop_requested.is_set():
        block = node.blocks.get(name)
        if block is None or block.watcher is not None:
            return None
        waiting = False
        for dep_name, condition, _ in wanted(block):
            dep = node.blocks.get(dep_name)
            if dep is None:
                continue
            verdict = met(dep, condition)
            if isinstance(verdict, str):
                return verdict
            if verdict:
                continue
            since = launched.get(dep_name)
            if condition != 'completed_successfully' and since is not None \
                    and time.monotonic() > since + dep.spec.ready.timeout:
                if dep_name not in late:
                    late.add(dep_name)
                    node.printer.error('%s not %s after %gs; starting what depends on it anyway' % (
                        dep_name, condition, dep.spec.ready.timeout))
                continue
            waiting = True
        if not waiting:
            return None
        await asyncio.sleep(POLL)
    return None


# -- restart: true -----------------------------------------------------------------


async def cascade(node: Node) -> None:
    """Watch for restarted blocks; restart their dependents that asked for it."""
    seen: dict[str, Block] = {}
    pending: set[str] = set()
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            await asyncio.sleep(POLL * 2)
            try:
                for name in restarted(node, seen):
                    for dependent in list(node.blocks.values()):
                        if dependent.name in pending or dependent.watcher is None or dependent.failed:
                            continue
                        for dep, condition, again in dependent.spec.conditions:
                            if dep == name and again:
                                pending.add(dependent.name)
                                task = asyncio.ensure_future(
                                    _restart_after(node, dependent.name, name, condition, pending))
                                tasks.add(task)
                                task.add_done_callback(tasks.discard)
            except Exception as e:
                node.trouble('depends_on restart', e)
    finally:  # the node is stopping: no dependent restarts during the shutdown
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def restarted(node: Node, seen: dict[str, Block]) -> list[str]:
    """Blocks the node restarted as a whole since the last look: a new Block under the
    name (`fannode restart`, an edit, the end of a rollout). A process replaced within
    its Block (a crash, a liveness kill, autoreload), scaling and a one-shot's exit are
    not restarts: dependents restart once per restart of what they depend on."""
    names = []
    for name, block in node.blocks.items():
        if NEXT in name:
            continue
        before = seen.get(name)
        seen[name] = block
        if before is not None and before is not block and not node.stopping:
            names.append(name)
    return names  # a block being replaced is missing a moment: kept in `seen`, its return is a restart


async def _restart_after(node: Node, name: str, dep: str, condition: str, pending: set[str]) -> None:
    def stopping() -> bool:
        return node.stopping or node.stop_requested.is_set()
    try:
        await until(lambda: dep not in node.blocks or met(node.blocks[dep], condition) is not False, None, stopping)
        if stopping() or name not in node.blocks:
            return
        node.printer.event('%s restarting: %s restarted (depends_on %s: restart: true)' % (name, dep, dep), 'yellow')
        async with node.changing:
            if not stopping() and name in node.blocks:  # the lock may come after Ctrl-C
                await node.restart(name)
    except Exception as e:
        node.trouble('restarting %s after %s' % (name, dep), e)
    finally:
        pending.discard(name)


# -- the stop ----------------------------------------------------------------------


def stop_waves(node: Node) -> list[list[str]]:
    """The blocks (not the hub) in the reverse of the start order: a wave at a time. A
    rolling block's new processes (NAME@next) stop with it, in its wave."""
    waves = [[n for n in wave if n in node.blocks or n + NEXT in node.blocks]
             for wave in reversed(node.topology.start_waves())]
    listed = {n for wave in waves for n in wave}
    rest = [n for n in node.blocks if n not in listed and n.split('@')[0] not in listed and n != HUB_BLOCK]
    waves = [[m for n in wave for m in (n, n + NEXT) if m in node.blocks] for wave in waves]
    return [wave for wave in [rest] + waves if wave]
