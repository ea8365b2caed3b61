"""depends_on conditions at run time (node.yml's form is fannode.node.dependson's):

- the start: every block is started once each block it depends on meets its condition:
  `started` (its processes are running), `ready` (its readiness check passed),
  `healthy` (ready, and passing its liveness probe where it has one), or
  `completed_successfully` (a one-shot block whose processes all exited 0; if one
  exited otherwise, the block waiting for it is not started, and says why);
- `restart: true`: when a block restarts (a process died and was replaced, `fannode
  restart`, an edit or a rollout that replaces it), its dependents with `restart: true`
  are restarted once it meets their condition again, as docker compose does;
- the stop: dependents first, in the reverse of the start order, the hub last.
"""
from __future__ import annotations

import asyncio
import time
from typing import Protocol

from fannode.node.block import Block
from fannode.node.output import Printer
from fannode.node.topology import HUB_BLOCK, Topology

POLL = 0.05


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
        return dep.watcher is not None and not dep.live and dep.gone >= dep.desired
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
    tasks = [asyncio.ensure_future(_start_when_due(node, node.blocks[name], launched, late, one_at_a_time))
             for wave in waves for name in wave]
    await asyncio.gather(*tasks)


async def _start_when_due(node: Node, block: Block, launched: dict[str, float], late: set[str],
                          one_at_a_time: asyncio.Lock) -> None:
    problem = await due(node, block, launched, late)
    if node.stop_requested.is_set():
        return
    if problem:
        block.failed = 'not started: %s' % problem
        node.printer.error('%s not started: %s' % (block.name, problem))
        return
    async with one_at_a_time:
        launched[block.name] = time.monotonic()
        await node.launch(block)


async def due(node: Node, block: Block, launched: dict[str, float], late: set[str]) -> str | None:
    """Wait until every block it depends on meets its condition (None), or one never will (why).
    One not ready within its `ready.timeout` of starting is said once and not waited for."""
    while not node.stop_requested.is_set():
        waiting = False
        for name, condition, _ in wanted(block):
            dep = node.blocks.get(name)
            if dep is None:
                continue
            verdict = met(dep, condition)
            if isinstance(verdict, str):
                return verdict
            if verdict:
                continue
            since = launched.get(name)
            if condition != 'completed_successfully' and since is not None \
                    and time.monotonic() > since + dep.spec.ready.timeout:
                if name not in late:
                    late.add(name)
                    node.printer.error('%s not %s after %gs; starting what depends on it anyway' % (
                        name, condition, dep.spec.ready.timeout))
                continue
            waiting = True
        if not waiting:
            return None
        await asyncio.sleep(POLL)
    return None


# -- restart: true -----------------------------------------------------------------


async def cascade(node: Node) -> None:
    """Watch for restarted blocks; restart their dependents that asked for it."""
    seen: dict[str, Seen] = {}
    pending: set[str] = set()
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
                            asyncio.ensure_future(_restart_after(node, dependent.name, name, condition, pending))
        except Exception as e:
            node.trouble('depends_on restart', e)


class Seen:
    """A block as last looked at, and the processes it lost and gained since it last settled."""

    def __init__(self, block: Block):
        self.block, self.pids, self.count = block, set(block.index), (block.desired, block.gone)
        self.lost: set[int] = set()
        self.fresh: set[int] = set()


def restarted(node: Node, seen: dict[str, Seen]) -> list[str]:
    """Blocks restarted since the last look: replaced (a new Block), or a process gone and
    another come while it wants as many as before (a crash and its replacement, `fannode
    restart`, a rollout). Scaling (the count changes) and a one-shot's exit (it is gone
    under its restart policy) are not restarts."""
    names = []
    for name, block in node.blocks.items():
        before = seen.get(name)
        if before is None or before.block is not block:
            seen[name] = Seen(block)
            if before is not None and not node.stopping:
                names.append(name)
            continue
        pids = set(block.index)
        if (block.desired, block.gone) != before.count:
            seen[name] = Seen(block)
            continue
        before.lost |= before.pids - pids
        before.fresh |= pids - before.pids
        before.pids = pids
        if before.lost and before.fresh and not node.stopping:
            before.lost, before.fresh = set(), set()
            names.append(name)
    return names  # a block being replaced is missing a moment: kept in `seen`, its return is a restart


async def _restart_after(node: Node, name: str, dep: str, condition: str, pending: set[str]) -> None:
    try:
        while not node.stopping:
            block = node.blocks.get(dep)
            if block is None or met(block, condition) is not False:
                break
            await asyncio.sleep(POLL)
        if node.stopping or name not in node.blocks:
            return
        node.printer.event('%s restarting: %s restarted (depends_on %s: restart: true)' % (name, dep, dep), 'yellow')
        async with node.changing:
            await node.restart(name)
    except Exception as e:
        node.trouble('restarting %s after %s' % (name, dep), e)
    finally:
        pending.discard(name)


# -- the stop ----------------------------------------------------------------------


def stop_waves(node: Node) -> list[list[str]]:
    """The blocks (not the hub) in the reverse of the start order: a wave at a time."""
    waves = [[n for n in wave if n in node.blocks] for wave in reversed(node.topology.start_waves())]
    listed = {n for wave in waves for n in wave}
    rest = [n for n in node.blocks if n not in listed and n != HUB_BLOCK]
    return [wave for wave in [rest] + waves if wave]
