"""Which RPC client serves the work being done now. The container sets it for each
request and event it handles (so module-level `fannode.proxy(...)` calls go through the
instance's own client and carry its trace), and a web request sets it the same way.
A context variable: several instances in one process (tests) each keep their own."""
from __future__ import annotations

import contextvars
from typing import Any

client: contextvars.ContextVar[Any] = contextvars.ContextVar('fannode_client', default=None)

# Request headers: user-given string pairs a caller attaches to one request (`fannode
# request --header k=v`), travelling in the wire headers' `h` sub-map so they never
# collide with the protocol's own keys (`ack`, `oneway`). `incoming` holds those of the
# request being handled (`fannode.headers()`); `outgoing` is the `h` map the client puts
# on the calls made in this context. They are two variables on purpose: a handler's own
# calls do not forward its caller's headers (only the trace id travels on).
USER_HEADERS = 'h'
MAX_KEY, MAX_VALUE = 64, 1024

incoming: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar('fannode_headers', default={})
outgoing: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar('fannode_out_headers',
                                                                                 default=None)


def header_problem(headers: Any, limit: int) -> str | None:
    """What is wrong with a map of user headers (from the network or the command line),
    or None: at most `limit` entries, string keys and values of sane lengths, printable
    (they are logged and shown) and keys without spaces or '='."""
    if type(headers) is not dict:
        return 'expected a map of strings'
    if len(headers) > limit:
        return '%d entries, over the limit of %d ($FANNODE_MAX_HEADERS)' % (len(headers), limit)
    for key, value in headers.items():
        if type(key) is not str or not key or len(key) > MAX_KEY:
            return 'keys must be strings of 1 to %d characters' % MAX_KEY
        if not key.isprintable() or ' ' in key or '=' in key:
            return 'key %r: only printable characters without spaces or "=" are allowed' % key[:MAX_KEY]
        if type(value) is not str or len(value) > MAX_VALUE:
            return '%s: values must be strings of at most %d characters' % (key, MAX_VALUE)
        if not value.isprintable():
            return '%s: control characters are not allowed in values' % key
    return None


def headers() -> dict[str, str]:
    """The user headers of the request being handled (a copy); {} outside one."""
    return dict(incoming.get())
