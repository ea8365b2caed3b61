"""The client behind `fannode.proxy(...)`: whichever serves the work being done now.

A proxy from `fannode.proxy` finds its client at each call, not when it is made, so one
made at import time (`echo = fannode.proxy('Echo')` at module or class level) works
wherever it is called from:

- inside a request or event an instance handles: that instance's client (it shares the
  instance's connections and carries the trace of the request), found through
  `fannode.core.current.client`; in a TestCluster that is the recording client;
- elsewhere: the process's default client, which `fannode instance` sets to its
  container's (so `--registry` is followed) and which is otherwise made on first use,
  finding the registry like the CLI does.
"""
from __future__ import annotations

from typing import Any

from fannode.core import current
from fannode.calls.client import NO_KEY, Method, Proxy, RpcClient
from fannode.exceptions import DiscoveryFailed, RegistryUnavailable

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
        _client = RpcClient(get_registry(resolve_url('registry', registry_url)), local=True)
    return _client


def registry_url() -> str:
    """The registry URL `fannode.proxy` calls go through here, without making a client for it."""
    client = current.client.get() or _client
    if client is not None:
        return client.registry.url
    from fannode.settings import resolve_url
    return resolve_url('registry', None)


def proxy(service: str, timeout: float | None = None, breaker: Any = None, shard_key: Any = NO_KEY,
          local: bool = True, version: Any = None) -> Proxy:
    return LazyProxy(service, timeout, breaker, shard_key, local, version)


class LazyProxy(Proxy):
    """A proxy whose client is found at each call (see the module's docstring)."""

    def __init__(self, service: str, timeout: float | None = None, breaker: Any = None,
                 shard_key: Any = NO_KEY, local: bool = True, version: Any = None):
        super().__init__(None, service, timeout, breaker, shard_key, local, version)

    def _method(self, name: str, timeout: float | None) -> Method:
        return LazyMethod(None, self._service, name, timeout, self._breaker, self._shard_key, self._local,
                          self._pin)

    def __repr__(self) -> str:
        return '<Proxy %s timeout=%s>' % (self._service, '%gs' % self._timeout if self._timeout else 'default')


class LazyMethod(Method):
    __slots__ = ()

    def target(self) -> RpcClient:
        try:
            return get_client()
        except RegistryUnavailable as e:  # no registry to make the default client with
            raise DiscoveryFailed('%s.%s: %s' % (self.service, self.name, e)) from e
