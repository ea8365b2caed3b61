"""The process-wide client behind `fannode.proxy(...)` in plain code.

Inside an instance the container installs its own client, so module-level proxies
share its connections and carry the trace id of the request being handled.
"""
from __future__ import annotations

from fannode.core import current
from fannode.calls.client import Proxy, RpcClient

_client: RpcClient | None = None


def set_client(client: RpcClient | None) -> None:
    global _client
    _client = client


def get_client(registry_url: str | None = None) -> RpcClient:
    global _client
    client = current.client.get()  # the instance handling the current request, if any
    if client is not None:
        return client
    if _client is None:
        from fannode.discovery import get_registry
        from fannode.settings import resolve_url
        _client = RpcClient(get_registry(resolve_url('registry', registry_url)))
    return _client


def proxy(service: str, timeout: float | None = None) -> Proxy:
    return get_client().proxy(service, timeout)
