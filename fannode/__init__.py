"""fannode: Python services with almost no boilerplate, and a node that runs them all.

    import fannode

    class Greeting(fannode.Interface):
        @fannode.rpc()
        def greet(self, name):
            return 'Hi, %s!' % name

This module is the whole public API; everything else is importable but internal.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from fannode.core.config import Config
from fannode.core.events import Event, event
from fannode.core.interface import Interface, rpc
from fannode.core.plugins import Plugin
from fannode.exceptions import (
    BadArguments, BadRequest, CircuitOpen, ConfigError, ConnectionLost, DeadlineExceeded, FannodeError, Nack,
    RegistryUnavailable, RemoteError, RpcError, Timeout, Unavailable, UnknownMethod, UnknownService,
)
from fannode.core.deadline import time_left
from fannode.core.deadline import wall_clock as deadline

if TYPE_CHECKING:
    from fannode.calls.client import Proxy

__version__ = '0.1.0'

__all__ = [
    'BadArguments', 'BadRequest', 'CircuitOpen', 'Config', 'ConfigError', 'ConnectionLost', 'DeadlineExceeded',
    'Event', 'FannodeError', 'Interface', 'Nack', 'Plugin', 'RegistryUnavailable', 'RemoteError', 'RpcError',
    'Timeout', 'Unavailable', 'UnknownMethod', 'UnknownService', 'WebInterface', 'deadline', 'emit', 'event',
    'proxy', 'rpc', 'time_left',
]


def proxy(service: str, timeout: float | None = None) -> 'Proxy':
    """Call `service` from anywhere: `fannode.proxy('Greeting', timeout=5).greet(name='Joe')`.
    The client is found at each call, so a proxy made at import time works too: in an
    instance, the instance's own; elsewhere, one that finds the registry like the CLI does
    (`$FANNODE_REGISTRY`, ./node.yml, local hub)."""
    from fannode.calls.default import proxy as default_proxy  # gevent and zmq only when used
    return default_proxy(service, timeout)


def emit(event_type: str, body: dict | None = None, delay: float | None = None) -> None:
    """Publish an event from anywhere: `fannode.emit('greeted', {'name': 'Joe'})`. Inside
    an instance it goes through the instance's connection; elsewhere the events URL is
    found like the CLI does (`$FANNODE_EVENTS`, ./node.yml, local hub). Returns at once;
    the event is sent in the background and retried until the broker takes it."""
    from fannode.events.default import emit as default_emit
    default_emit(event_type, body, delay)


def __getattr__(name: str) -> object:
    if name == 'WebInterface':  # werkzeug is imported only by services that serve HTTP
        from fannode.web.interface import WebInterface
        return WebInterface
    raise AttributeError("module 'fannode' has no attribute %r" % name)
