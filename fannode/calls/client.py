"""Calls to services: client-side round-robin over the instances discovery knows."""
from __future__ import annotations

import itertools
import random
import time
from typing import Any

import gevent
import zmq

from fannode.core import trace
from fannode.discovery import Registry
from fannode.exceptions import DiscoveryFailed, RegistryUnavailable, Timeout, Unavailable, UnknownService
from fannode.core import wire
from fannode.zmqrpc.connection import Call, Connection, encode_request, shared_context

DEFAULT_TIMEOUT = 3.0
_ids = itertools.count(1)


class RpcClient:
    """Owns one connection per endpoint; shared by every proxy in a process."""

    def __init__(self, registry: Registry, context: zmq.Context | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.registry = registry
        self.context = context or shared_context()
        self.timeout = timeout
        self.connections: dict[str, Connection] = {}
        self._turn: dict[str, int] = {}
        self._endpoints: dict[str, set[str]] = {}
        registry.add_listener(self._on_change)
        self._sweeper = gevent.spawn(self._sweep)

    def proxy(self, service: str, timeout: float | None = None) -> 'Proxy':
        return Proxy(self, service, timeout or self.timeout)

    def call(self, service: str, method: str, kwargs: dict[str, Any],
             timeout: float | None = None) -> Call:
        """Send one request and return its future; raises at once when nobody can take it."""
        timeout = timeout or self.timeout
        subject = '%s.%s' % (service, method)
        call = Call(subject, next(_ids), timeout)
        msg = wire.Message(wire.REQ, call.id, subject, kwargs,
                           trace_id=trace.ensure_id(), span_id=trace.get_span(), deadline_ms=int(timeout * 1000))
        self._send(service, encode_request(msg), call)
        return call

    def lookup(self, service: str, subject: str) -> list:
        """The instances of `service`; a registry that fails is the call's failure, an
        RpcError like any other, not the backend's own exception."""
        try:
            return self.registry.lookup(service)
        except RegistryUnavailable as e:  # its message already says where and what to do
            raise DiscoveryFailed(str(e)) from e
        except Exception as e:  # a backend's own (kazoo's ConnectionLoss...): say where
            raise DiscoveryFailed('%s: cannot look up %s in the registry at %s: %s' % (
                subject, service, self.registry.url, str(e) or type(e).__name__)) from e

    def _send(self, service: str, frame: bytes, call: Call) -> None:
        delay = 0.001
        while True:
            instances = self.lookup(service, call.subject)
            if not instances:
                raise UnknownService("no instance of service '%s' is registered" % service).as_received()
            # Start at a random instance so many short-lived clients (CLI calls) spread too.
            start = self._turn.get(service)
            if start is None:
                start = random.randrange(len(instances))
            self._turn[service] = start + 1
            bad = []
            for i in range(len(instances)):
                try:
                    conn = self.connection(instances[(start + i) % len(instances)].endpoint)
                except ValueError as e:  # a bad registration: the other instances may do
                    bad.append(str(e))
                    continue
                if conn.send(frame, call):
                    return
            if len(bad) == len(instances):
                raise DiscoveryFailed('%s: the registry at %s gave no usable instance of %s: %s' % (
                    call.subject, self.registry.url, service, bad[0]))
            # None is connected yet (just started, or all gone): wait a little, ask again.
            if time.monotonic() + delay > call.deadline:
                raise Timeout('%s: none of %d instance(s) of %s reachable within %gs'
                              % (call.subject, len(instances), service, call.timeout))
            gevent.sleep(delay)
            delay = min(delay * 2, 0.05)

    def call_retrying(self, service: str, method: str, kwargs: dict[str, Any],
                      timeout: float | None = None) -> Any:
        """A blocking call; a NACK from a stopping instance is retried on another one,
        since the request was never run."""
        timeout = timeout or self.timeout
        deadline = time.monotonic() + timeout
        while True:
            call = self.call(service, method, kwargs, timeout)
            try:
                return call.get()
            except Unavailable:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise
                gevent.sleep(0.01)

    def connection(self, endpoint: str) -> Connection:
        conn = self.connections.get(endpoint)
        if conn is None:
            conn = self.connections[endpoint] = Connection(self.context, endpoint)
        return conn

    def _on_change(self, service: str, instances: list) -> None:
        self._endpoints[service] = {i.endpoint for i in instances}
        self._retire()

    def _retire(self) -> None:
        """Close connections to endpoints that left discovery, once their calls are answered
        (an instance that stops gracefully leaves first, then finishes what it has)."""
        wanted = set().union(*self._endpoints.values())
        for endpoint, conn in list(self.connections.items()):
            if endpoint not in wanted and not conn.pending:
                del self.connections[endpoint]
                conn.close()

    def close(self) -> None:
        self._sweeper.kill(block=False)
        for conn in self.connections.values():
            conn.close()
        self.connections.clear()

    def _sweep(self) -> None:
        while True:
            gevent.sleep(1.0)
            now = time.monotonic()
            for conn in list(self.connections.values()):
                conn.expire(now)
            self._retire()


class Proxy:
    """`proxy('Greeting').greet(name='Joe')` blocks; `.greet.defer(name='Joe')` returns a future."""

    def __init__(self, client: RpcClient | None, service: str, timeout: float | None = DEFAULT_TIMEOUT):
        self._client = client
        self._service = service
        self._timeout = timeout

    def __getattr__(self, name: str) -> 'Method':
        if name.startswith('_'):
            raise AttributeError(name)
        return self._method(name, self._timeout)

    def _method(self, name: str, timeout: float | None) -> 'Method':
        assert self._client is not None
        return Method(self._client, self._service, name, timeout)

    def __repr__(self) -> str:
        return '<Proxy %s timeout=%gs>' % (self._service, self._timeout or 0)


class Method:
    __slots__ = ('client', 'service', 'name', 'timeout')

    def __init__(self, client: RpcClient | None, service: str, name: str, timeout: float | None):
        self.client = client
        self.service = service
        self.name = name
        self.timeout = timeout  # None: the client's

    def target(self) -> RpcClient:
        """The client this call goes through."""
        assert self.client is not None
        return self.client

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._no_positional(args)
        return self.target().call_retrying(self.service, self.name, kwargs, self.timeout)

    def defer(self, *args: Any, **kwargs: Any) -> Call:
        self._no_positional(args)
        return self.target().call(self.service, self.name, kwargs, self.timeout)

    def with_timeout(self, timeout: float) -> 'Method':
        """This method with a timeout of its own: `proxy.slow.with_timeout(10)(x=1)`."""
        return type(self)(self.client, self.service, self.name, timeout)

    def _no_positional(self, args: tuple) -> None:
        if args:
            raise TypeError('%s.%s: RPC methods take keyword arguments only'
                            % (self.service, self.name))

    def __repr__(self) -> str:
        return '<Method %s.%s>' % (self.service, self.name)
