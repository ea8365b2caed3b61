"""fannode: Python services with almost no boilerplate, and a node that runs them all.

    import fannode

    class Greeting(fannode.Interface):
        @fannode.rpc()
        def greet(self, name):
            return 'Hi, %s!' % name

This module is the whole public API; everything else is importable but internal.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fannode.core.config import Config
from fannode.core.events import Event, event
from fannode.core.interface import Interface, rpc
from fannode.core.plugins import Plugin
from fannode.exceptions import (
    BadArguments, BadRequest, CircuitOpen, ConfigError, ConnectionLost, DeadlineExceeded, FannodeError, Nack,
    RegistryUnavailable, RemoteError, RpcError, Timeout, Unavailable, UnknownMethod, UnknownService, UnknownVersion,
)
from fannode.core.deadline import time_left
from fannode.core.deadline import wall_clock as deadline
from fannode.core.current import headers

if TYPE_CHECKING:
    from fannode.calls.client import Proxy

__version__ = '0.1.0'

__all__ = [
    'BadArguments', 'BadRequest', 'CircuitOpen', 'Config', 'ConfigError', 'ConnectionLost', 'DeadlineExceeded',
    'Event', 'FannodeError', 'Interface', 'Nack', 'Plugin', 'RegistryUnavailable', 'RemoteError', 'RpcError',
    'Timeout', 'Unavailable', 'UnknownMethod', 'UnknownService', 'UnknownVersion', 'WebInterface', 'deadline', 'emit', 'event',
    'headers', 'proxy', 'rpc', 'time_left', 'unique_id',
]


_NO_KEY: Any = object()  # no shard_key given (None is a key)


def proxy(service: str, timeout: float | None = None, breaker: dict | bool | None = None,
          shard_key: Any = _NO_KEY, local: bool = True, version: str | None = None) -> 'Proxy':
    """Call `service` from anywhere: `fannode.proxy('Greeting', timeout=5).greet(name='Joe')`.
    The client is found at each call, so a proxy made at import time works too: in an
    instance, the instance's own; elsewhere, one that finds the registry like the CLI does
    (`$FANNODE_REGISTRY`, ./node.yml, local hub). `breaker={'failures': 2, 'cooldown': 1}`
    gives its calls circuit breakers of their own, `breaker=False` none (docs/resilience.md).
    `shard_key=7` sends every call to the instance owning key 7 (docs/sharding.md).
    `local=False` goes over the network even to an instance in this process, and
    `version='^1.2'` calls only instances of a matching version (docs/services.md)."""
    from fannode.calls.default import NO_KEY, proxy as default_proxy  # gevent and zmq only when used
    return default_proxy(service, timeout, breaker, NO_KEY if shard_key is _NO_KEY else shard_key,
                         local, version)


def emit(event_type: str, body: dict | None = None, delay: float | None = None,
         ttl: float | None = None) -> None:
    """Publish an event from anywhere: `fannode.emit('greeted', {'name': 'Joe'})`. Inside
    an instance it goes through the instance's connection; elsewhere the events URL is
    found like the CLI does (`$FANNODE_EVENTS`, ./node.yml, local hub). Returns at once;
    the event is sent in the background and retried until the broker takes it. With
    `ttl` (seconds), an event not handled that soon after emit is dead-lettered, not run."""
    from fannode.events.default import emit as default_emit
    default_emit(event_type, body, delay, ttl=ttl)


def unique_id(name: str) -> int:
    """An id of `name` (e.g. 'orders') that no other call in the cluster gets, from the
    registry's store (the hub's journal, or ZooKeeper); each process's ids of a name
    increase. Ids are reserved in blocks, so most calls do not leave the process."""
    from fannode.calls.default import registry_url
    from fannode.sharedconfig.default import shared_config_for
    return shared_config_for(registry_url()).unique_id(name)


def __getattr__(name: str) -> object:
    if name == 'WebInterface':  # werkzeug is imported only by services that serve HTTP
        from fannode.web.interface import WebInterface
        return WebInterface
    if name == 'web':  # `fannode.web.route` after a bare `import fannode`
        import importlib
        return importlib.import_module('fannode.web')
    raise AttributeError("module 'fannode' has no attribute %r" % name)
