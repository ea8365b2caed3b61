"""A proxy's per-call options, passed to the client beside the arguments, not as one, so
that a subclass's call() (the toolkit's recording client) need not know of them: context
variables a Method sets around its call (client.py)."""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

from fannode.calls.breaker import Settings
from fannode.core.versions import Pin, pin

NO_KEY: Any = object()  # a call routed round-robin, not by a shard key

# `breaker=`: None (the config's), False (none) or the proxy's own settings.
breaker: contextvars.ContextVar[Settings | bool | None] = contextvars.ContextVar('fannode_breaker', default=None)
# `shard_key=`: the key every call is routed by.
shard_key: contextvars.ContextVar[Any] = contextvars.ContextVar('fannode_shard_key', default=NO_KEY)
# `local=`: False sends over the network even to an instance in this process.
local: contextvars.ContextVar[bool] = contextvars.ContextVar('fannode_local', default=True)
# `version=`: only instances whose version matches.
version: contextvars.ContextVar[Pin | None] = contextvars.ContextVar('fannode_pin', default=None)


@contextlib.contextmanager
def pinned(wanted: Any) -> Iterator[None]:
    """Calls made inside go only to instances matching `wanted` ('^1.2', as a proxy's
    `version=`; None: any), for callers of RpcClient.call/call_retrying themselves
    (`fannode request Greeting@^1.2.greet`). UsageError for a bad range, at once."""
    token = version.set(pin(wanted))
    try:
        yield
    finally:
        version.reset(token)
