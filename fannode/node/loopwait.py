"""Two waits the node's tasks share: a condition looked at until a deadline, and a
circus call tried again while another holds circus' lock."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

POLL = 0.05


async def until(condition: Callable[[], bool], timeout: float | None,
                stop: Callable[[], bool] = lambda: False, poll: float = POLL) -> bool:
    """True once `condition()` holds; False when `stop()` does first or `timeout` seconds
    pass (None: no deadline)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not condition():
        if stop() or (deadline is not None and time.monotonic() > deadline):
            return False
        await asyncio.sleep(poll)
    return True


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
