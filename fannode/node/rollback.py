"""The end of an automatic rollback (fannode.node.rollout): the old spec ready again at
the count it ran, then the new processes stopped.

The wait for the old spec is bounded, since it holds the node's change lock: its
`ready.timeout`, said, then as long again. Past that the lock is let go (scale, restart,
reload and node.yml saves work again), the rollout is `rolled back (incomplete)`, the
ready new processes (NAME@next) go on serving, and a task without the lock stops them
once the old spec is ready, taking the lock only for that.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from fannode.node.block import Block
from fannode.node.loopwait import until
from fannode.node.rolloutstatus import NEXT

INCOMPLETE = 'rolled back (incomplete)'


def serving(block: Block) -> int:
    return len(block.ready_pids & block.live)


def _serve(n: int) -> str:
    return '%d new process serves' % n if n == 1 else '%d new processes serve' % n


async def wait_back(rollouts: Any, rollout: Any, old: Block, new: Block, original: int, why: str) -> None:
    """Under the change lock, once the old spec was asked back to `original` processes."""
    node, name = rollouts.node, rollout.name
    stopped: Callable[[], bool] = rollouts.stopped

    def back() -> bool:
        return old.is_ready or old.failed is not None
    bound = old.spec.ready.timeout
    if not await until(back, bound, stopped) and not stopped():
        # the ready new processes keep serving until the old ones are back
        node.printer.error('%s: rollback incomplete: %d of %d processes of the previous spec ready after %gs; '
                           '%d new processes serve until they are' % (
                               name, serving(old), original, bound, serving(new)))
        if not await until(back, bound, stopped) and not stopped():
            rollout.state = INCOMPLETE
            node.printer.error('%s: %s: %d of %d processes of the previous spec ready after %gs; changes are '
                               'taken again, %s until they are' % (
                                   name, INCOMPLETE, serving(old), original, 2 * bound, _serve(serving(new))))
            task = asyncio.ensure_future(_finish_later(rollouts, rollout, old, new, original, why))
            rollouts.tasks.add(task)
            task.add_done_callback(rollouts.tasks.discard)
            return
    if not stopped():
        await finish(rollouts, rollout, old, original, why)


async def _finish_later(rollouts: Any, rollout: Any, old: Block, new: Block, original: int, why: str) -> None:
    """Without the lock until the block is ready (or replaced, or removed from node.yml)."""
    node, name = rollouts.node, rollout.name

    def settled() -> bool:
        current = node.blocks.get(name)
        return (node.blocks.get(name + NEXT) is not new or current is None
                or current.is_ready or current.failed is not None)
    if not await until(settled, None, rollouts.stopped):
        return
    async with node.changing:
        if rollouts.stopped() or node.blocks.get(name + NEXT) is not new:
            return
        if node.blocks.get(name) is old:
            await finish(rollouts, rollout, old, original, why)
        else:  # replaced or removed meanwhile: what runs now is node.yml's
            await node.remove(name + NEXT)


async def finish(rollouts: Any, rollout: Any, old: Block, original: int, why: str) -> None:
    node, name = rollouts.node, rollout.name
    await node.remove(name + NEXT)
    ready = serving(old)
    said = '%d processes' % ready if ready >= original else '%d of %d processes' % (ready, original)
    node.printer.error('%s: rollout to %s failed: %s; rolled back, %s of the previous spec serving'
                       % (name, rollout.target, why, said))
    rollouts.set_spec(name, old.spec, rollout.kind != 'node.yml')
