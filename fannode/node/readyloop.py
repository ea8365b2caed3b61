"""The node's readiness loop: asks the probes, marks processes ready (or not ready again,
when a hard dependency goes), and says "cluster ready" each time everything is."""
from __future__ import annotations

import asyncio
import time
from typing import Protocol

from fannode.node import ready
from fannode.node.block import Block
from fannode.node.output import Printer
from fannode.node.rollout import NEXT
from fannode.node.topology import HUB_BLOCK

POLL = 0.1            # readiness checks
RECHECK = 1.0         # ready instances are asked again this often: one may lose a hard dependency


class Node(Protocol):
    """What readiness uses of the node (fannode.node.supervisor.Node)."""

    blocks: dict[str, Block]
    printer: Printer
    probe: ready.Probe | None
    rechecked: float  # when ready service instances were last looked up
    starting: bool    # no "cluster ready" before the last wave has started
    announced: bool
    started: float

    def trouble(self, what: str, e: Exception) -> None: ...


async def readiness(node: Node) -> None:
    while True:
        try:
            await check_readiness(node)
        except Exception as e:  # a strange answer from a probe must not end readiness for good
            node.trouble('readiness', e)
        await asyncio.sleep(POLL)


async def check_readiness(node: Node) -> None:
    pending = [b for b in node.blocks.values() if b.watcher is not None and not b.is_ready]
    registered: dict[int, list[str]] = {}
    waiting: dict[int, list[str]] = {}  # registered as not ready: a hard dependency has no instance
    asked = False
    now = time.monotonic()
    recheck = now - node.rechecked >= RECHECK and any(
        b.spec.ready.kind == 'registered' and b.ready_pids for b in node.blocks.values())
    if node.probe is not None and (recheck or any(b.spec.ready.kind == 'registered' for b in pending)):
        node.rechecked = now
        registered, waiting = await node.probe.registrations()
        asked = True
    for block in list(node.blocks.values()):
        block.forget_removed()
        if asked:
            block.unready(waiting)
    for block in pending:
        was = block.ready_since
        await block.check_ready(registered)
        if block.is_ready and was is None:
            block.ready_since = time.monotonic()
            node.printer.event('%s ready: %d/%d' % (block.name, block.target, block.desired), 'green')
    for block in node.blocks.values():
        if not block.is_ready:
            block.ready_since = None
    announce(node)


def announce(node: Node) -> None:
    """Say "cluster ready" each time everything has become ready (again). A rollout's new
    processes (NAME@next) are not counted: the block they replace keeps serving meanwhile."""
    blocks = [b for name, b in node.blocks.items() if not name.endswith(NEXT)]
    all_ready = not node.starting and all(b.is_ready or b.failed for b in blocks)
    if all_ready and not node.announced:
        node.announced = True
        failed = [b.name for b in blocks if b.failed]
        summary = ', '.join('%s %s' % (b.name, 'completed' if b.state == 'completed' else '%d/%d' % (
            b.running, b.desired)) for b in blocks if b.name != HUB_BLOCK)
        took = time.monotonic() - node.started
        if failed:
            node.printer.error('cluster up with failures in %.1fs: %s; failed: %s' % (
                took, summary, ', '.join(failed)))
        else:
            node.printer.event('[bold green]cluster ready[/] in %.1fs: %s' % (took, summary))
    elif not all_ready and node.announced:
        node.announced = False
        node.started = time.monotonic()

