"""The process-wide client behind `fannode.proxy(...)` in plain code.

Inside an instance the container installs its own client, so module-level proxies
share its connections and carry the trace id of the request being handled.
"""
from __future__ import annotations

import contextvars

from fannode.zmqrpc.client import Proxy, RpcClient

_client: RpcClient | None = None
# The client of the instance handling the current request; set per request greenlet so
# several instances in one process (tests) each call through their own.
current: contextvars.ContextVar[RpcClient | None] = contextvars.ContextVar('fannode_client', default=None)


def set_client(client: RpcClient | None) -> None:
    global _client
    _client = client


def get_client(registry_url: str | None = None) -> RpcClient:
    global _client
    client = current.get()
    if client is not None:
        return client
    if _client is None:
        from fannode.discovery import get_registry
        from fannode.settings import resolve_url
        _client = RpcClient(get_registry(resolve_url('registry', registry_url)))
    return _client


def proxy(service: str, timeout: float | None = None) -> Proxy:
    return get_client().proxy(service, timeout)
