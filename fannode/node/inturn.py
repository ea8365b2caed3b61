"""A block's processes replaced in turn within its own watcher (fannode.node.rollout's
other way, for blocks that cannot run a second set beside the first):

- readiness that cannot tell a new process from an old one (a tcp or http check, or
  none): each process is stopped and its replacement started beside it, the next once
  a process started after it is ready;
- a Procfile block (`port`): its processes' PORT comes from the worker index, which the
  replacement takes over, so the replacement starts once the old process is gone.
"""
from __future__ import annotations

import asyncio
from typing import Protocol

from fannode.node.block import Block
from fannode.node.loopwait import until
from fannode.node.output import Printer


class Node(Protocol):
    """What it uses of the node (fannode.node.supervisor.Node)."""

    blocks: dict[str, Block]
    stop_requested: asyncio.Event

    @property
    def printer(self) -> Printer: ...


class Progress(Protocol):
    """What it keeps up to date of its rollout (fannode.node.rollout.Rollout)."""

    done: int
    total: int


async def replace(node: Node, rollout: Progress, block: Block) -> str:
    """Each live process of `block` in turn, lowest worker index first; why it stopped
    early, or ''."""
    after_exit = block.spec.port is not None
    pids = sorted(block.live, key=lambda p: block.index.get(p, 0))
    rollout.total = len(pids)
    for pid in pids:
        if node.stop_requested.is_set():
            return 'the node is stopping'
        if node.blocks.get(block.name) is not block:
            return 'the block was replaced meanwhile'
        if pid in block.live:  # else gone meanwhile: its replacement runs the new code already
            before = set(block.index)
            block.stop_process(pid)
            if not after_exit:
                block.sync()  # the replacement starts beside the one stopping
            # else: the block's reap of it starts the replacement (sync), on a free PORT
            timeout = block.spec.ready.timeout + (block.spec.stop_timeout if after_exit else 0.0)
            if not await until(lambda: bool((block.ready_pids & block.live) - before), timeout,
                               stop=lambda: (node.stop_requested.is_set() or block.failed is not None
                                             or node.blocks.get(block.name) is not block)):
                if node.stop_requested.is_set():
                    return 'the node is stopping'
                return block.failed or 'no new process ready within %gs' % timeout
        rollout.done += 1
        node.printer.event('%s: %d/%d replaced' % (block.name, rollout.done, rollout.total), 'cyan')
    return ''
