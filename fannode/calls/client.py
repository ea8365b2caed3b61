"""Calls to services: client-side round-robin over the ready instances discovery knows,
past the ones whose circuit breaker is open (breaker.py); a call refused unrun is retried,
and a call to an idempotent method also after its instance was lost. An instance running
in this process is called through its door (local.py), without a network hop; a proxy's
`version=` keeps to the instances whose version matches, and an unpinned call to the
service's current version when several run (routes.py)."""
from __future__ import annotations

import itertools
import random
import time
from typing import Any, NamedTuple

import gevent
import zmq

from fannode.calls import local
from fannode.calls.options import NO_KEY
from fannode.calls.options import breaker as _breaker, local as _local, shard_key as _shard_key, version as _pin
from fannode.calls.routes import Routes
from fannode.calls.breaker import (
    HALF_OPEN, BreakerConfig, Breakers, GuardedCall, ServiceBreakers, Settings, settings_from,
)
from fannode.core import current, deadline, trace
from fannode.core.dependencies import missing_hard, strings
from fannode.core.interface import BUILTINS
from fannode.core.shards import instances_by_rank
from fannode.core.versions import Pin, pin
from fannode.discovery import Registry
from fannode.exceptions import (
    CircuitOpen, ConnectionLost, DeadlineExceeded, DiscoveryFailed, RegistryUnavailable, Unavailable, UnknownService,
)
from fannode.core import wire
from fannode.zmqrpc.connection import Call, Connection, encode_request, shared_context

DEFAULT_TIMEOUT = 3.0
_ids = itertools.count(1)


class Known(NamedTuple):
    """What a service's registrations say, worked out once per change of the registry's list."""
    instances: list
    ready: list                 # those callers may send to
    idempotent: frozenset[str]  # 'Service.method' names they may retry
    shards: dict[str, str]      # method → the argument its calls are routed by


class RpcClient:
    """Owns one connection per endpoint; shared by every proxy in a process. With `local`
    (an instance's client, the toolkit's), instances in this process are called directly."""

    def __init__(self, registry: Registry, context: zmq.Context | None = None,
                 timeout: float = DEFAULT_TIMEOUT, breakers: BreakerConfig | None = None, local: bool = False):
        self.registry = registry
        self.local = local
        self.context = context or shared_context()
        self.timeout = timeout
        self.connections: dict[str, Connection] = {}
        self.breakers = Breakers(breakers)
        self.closed = False
        self._turn: dict[str, int] = {}
        self._endpoints: dict[str, set[str]] = {}
        # per service: (the registry's list, its ready instances, the methods they may retry,
        # method → the argument its calls are routed by)
        self._known: dict[str, Known] = {}
        self.routes = Routes(registry.url)  # which version unpinned calls go to
        registry.add_listener(self._on_change)
        self._sweeper = gevent.spawn(self._sweep)

    def proxy(self, service: str, timeout: float | None = None, breaker: Any = None,
              shard_key: Any = NO_KEY, local: bool = True, version: Any = None) -> 'Proxy':
        return Proxy(self, service, timeout or self.timeout, breaker, shard_key, local, version)

    def call(self, service: str, method: str, kwargs: dict[str, Any],
             timeout: float | None = None) -> Call:
        """Send one request and return its future; raises at once when nobody can take it.
        Its timeout is no longer than what the request being handled has left."""
        subject = '%s.%s' % (service, method)
        wanted = timeout or self.timeout
        timeout = deadline.clamp(wanted, subject)
        guard = self.breakers.for_call(service, _breaker.get())
        call = (Call(subject, next(_ids), timeout) if guard is None
                else GuardedCall(subject, next(_ids), timeout, clamped=timeout < wanted))
        msg = wire.Message(wire.REQ, call.id, subject, kwargs, trace_id=trace.ensure_id(),
                           span_id=trace.get_span(), deadline_ms=wire.budget_ms(timeout),
                           headers=current.outgoing.get())
        self._send(service, encode_request(msg), call, guard, self.shard_key(service, method, kwargs, subject))
        return call

    def shard_key(self, service: str, method: str, kwargs: dict[str, Any], subject: str) -> Any:
        """The key a call is routed by: the proxy's `shard_key=`, else the argument the
        method is sharded by (`@rpc(shard=...)`, as its instances announce); NO_KEY when none."""
        key = _shard_key.get()
        if key is NO_KEY:
            field = self.known(service, subject).shards.get(method)
            if field is not None:
                key = kwargs.get(field, NO_KEY)  # missing: the instance refuses the call, saying so
        return key

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

    def known(self, service: str, subject: str) -> Known:
        """(instances, the ready ones, 'Service.method' names they may retry, method →
        shard argument), worked out once per change of the registry's list."""
        instances = self.lookup(service, subject)
        known = self._known.get(service)
        if known is None or known[0] is not instances:
            ready = [i for i in instances if getattr(i, 'ready', True)]
            metas = [i.meta for i in instances if isinstance(i.meta, dict)]
            retry = frozenset(m for meta in metas for m in strings(meta.get('idempotent')))
            prefix = service + '.'
            shards = {subject[len(prefix):]: field for meta in metas if isinstance(meta.get('shards'), dict)
                      for subject, field in meta['shards'].items()
                      if isinstance(subject, str) and subject.startswith(prefix) and isinstance(field, str)}
            known = self._known[service] = Known(instances, ready, retry, shards)
        return known

    def idempotent(self, service: str, method: str) -> bool:
        """Whether the instances of `service` say `method` may run twice (the built-ins only read)."""
        subject = '%s.%s' % (service, method)
        return method in BUILTINS or subject in self.known(service, subject).idempotent

    def _order(self, service: str, subject: str, ready: list, key: Any) -> list:
        """The instances to try, in order: by rank for `key` (its owner first, then who
        would own it without the owner: fannode.core.shards), else round-robin."""
        if key is not NO_KEY:
            return instances_by_rank(key, ready, '%s: shard key' % subject)
        # Start at a random instance so many short-lived clients (CLI calls) spread too.
        start = self._turn.get(service)
        if start is None:
            start = random.randrange(len(ready))
        self._turn[service] = start + 1
        start %= len(ready)
        return ready[start:] + ready[:start]

    def _send(self, service: str, frame: bytes, call: Call, guard: ServiceBreakers | None,
              key: Any = NO_KEY) -> None:
        delay = 0.001
        lost: set = set()  # breakers already told their endpoint went down: once per call, not per pass
        while True:
            instances, ready = self.eligible(service, call.subject)
            if not ready:
                raise self._none_ready(service, instances)
            order = self._order(service, call.subject, ready, key)
            near = self.local and bool(local.doors) and _local.get()  # those in this process: directly
            if near and key is NO_KEY:  # but a shard key goes to its owner, wherever it runs
                order = local.nearest_first(order)
            bad, shut, down = [], 0, []
            now = time.monotonic()
            for info in order:
                endpoint = info.endpoint
                breaker = None
                if guard is not None:
                    breaker = guard.endpoint(endpoint)
                    if not breaker.allow(now):
                        shut += 1
                        continue
                door = local.doors.get(endpoint) if near else None
                try:
                    conn: Connection | local.LocalDoor = door if door is not None else self.connection(endpoint)
                except ValueError as e:  # a bad registration: the other instances may do
                    bad.append(str(e))
                    if breaker is not None:
                        breaker.released()
                    continue
                if conn.send(frame, call):
                    if breaker is not None:
                        breaker.was_up = True
                        call.breaker = breaker  # type: ignore[attr-defined]  # a GuardedCall
                    return
                if key is not NO_KEY and (conn.connected or not conn.was_up):
                    # The owner is still connecting, or busy: wait for it. Only an owner that is
                    # gone (or whose breaker is open) hands its keys to the next in rank.
                    if breaker is not None:
                        breaker.released()
                    break
                if breaker is not None:
                    breaker.released()
                    if breaker.state == HALF_OPEN:  # the probe goes once it is connected again
                        shut += 1
                    elif breaker.was_up:  # it was up and went down: gone or restarting
                        if breaker not in lost:
                            lost.add(breaker)
                            breaker.failed('ConnectionLost: the connection to %s is down' % endpoint)
                    else:  # not up yet: counted only if the call times out waiting (below)
                        down.append(breaker)
            if guard is not None and shut == len(ready):
                raise self._circuit_open(call.subject, guard)
            if len(bad) == len(ready):
                raise DiscoveryFailed('%s: the registry at %s gave no usable instance of %s: %s' % (
                    call.subject, self.registry.url, service, bad[0]))
            # None is connected yet (just started, or all gone): wait a little, ask again.
            if time.monotonic() + delay > call.deadline:
                for breaker in down if not getattr(call, 'clamped', False) else ():
                    breaker.failed('DeadlineExceeded: not connected within %gs' % call.timeout)
                raise DeadlineExceeded('%s: none of %d instance(s) of %s reachable within %gs'
                                       % (call.subject, len(ready), service, call.timeout))
            gevent.sleep(delay)
            delay = min(delay * 2, 0.05)

    def eligible(self, service: str, subject: str) -> tuple[list, list]:
        """(instances, the ready ones) of `service` a call may go to: those matching the
        proxy's `version=` (UnknownVersion when none does), else those of the service's
        current version (fannode.calls.routes)."""
        return self.routes.eligible(service, subject, self.known(service, subject), _pin.get())

    def _none_ready(self, service: str, instances: list) -> Exception:
        if not instances:
            return UnknownService("no instance of service '%s' is registered" % service).as_received()
        missing = sorted({m for i in instances for m in missing_hard(i)})
        return Unavailable('no ready instance of %s: %d registered, not ready%s' % (
            service, len(instances), ' (missing %s)' % ', '.join(missing) if missing else '')).as_received()

    def _circuit_open(self, subject: str, guard: ServiceBreakers) -> CircuitOpen:
        now = time.monotonic()
        wait = guard.retry_in(now)
        last = max(guard.endpoints.values(), key=lambda b: b.opened).last if guard.endpoints else ''
        return CircuitOpen('%s: not sent, the circuit breaker of %s is open (%d instance(s), each failing; the '
                           'last: %s); %s' % (subject, guard.service, len(guard.endpoints), last,
                                              'next probe in %.1fs' % wait if wait is not None
                                              else 'probing it again now'))

    def call_retrying(self, service: str, method: str, kwargs: dict[str, Any],
                      timeout: float | None = None, sent: list[Call] | None = None) -> Any:
        """A blocking call. A refusal (NACK: never run) is retried on another instance;
        so is a call to an idempotent method whose instance went away, within the deadline.
        Each try is appended to `sent` when given (its `endpoint` says where it went)."""
        timeout = timeout or self.timeout
        if deadline.get() is not None:  # in a request that has one: no longer than it has left
            timeout = deadline.clamp(timeout, '%s.%s' % (service, method))
        until = time.monotonic() + timeout
        while True:
            call = self.call(service, method, kwargs, timeout)
            if sent is not None:
                sent.append(call)
            try:
                return call.get()
            except (Unavailable, ConnectionLost) as e:
                if isinstance(e, ConnectionLost) and (self.closed or not self.idempotent(service, method)):
                    raise
                timeout = until - time.monotonic()
                if timeout <= 0:
                    raise
                gevent.sleep(0.01)

    def connection(self, endpoint: str) -> Connection:
        conn = self.connections.get(endpoint)
        if conn is None:
            conn = self.connections[endpoint] = Connection(self.context, endpoint)
        return conn

    def _on_change(self, service: str, instances: list) -> None:
        self._endpoints[service] = endpoints = {i.endpoint for i in instances}
        self.breakers.keep(service, endpoints)
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
        self.closed = True
        self._sweeper.kill(block=False)
        self.routes.close()
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


def breaker_option(breaker: Any) -> Settings | bool | None:
    """A proxy's `breaker=`: None (the config's), False (none), True (the defaults) or a
    mapping {failures, cooldown}; ConfigError naming the key that is wrong."""
    if breaker is None or breaker is False:
        return breaker
    if breaker is True:
        return settings_from({})
    return settings_from(breaker)


class Proxy:
    """`proxy('Greeting').greet(name='Joe')` blocks; `.greet.defer(name='Joe')` returns a future.
    `breaker=` as in breaker_option; `shard_key=` routes every call by that key
    (docs/sharding.md); `local=False` never calls an instance in this process directly;
    `version='^1.2'` calls only instances of a matching version (UsageError when bad)."""

    def __init__(self, client: RpcClient | None, service: str, timeout: float | None = DEFAULT_TIMEOUT,
                 breaker: Any = None, shard_key: Any = NO_KEY, local: bool = True, version: Any = None):
        self._client = client
        self._service = service
        self._timeout = timeout
        self._breaker = breaker_option(breaker)
        self._shard_key = shard_key
        self._local = bool(local)
        self._pin = pin(version)

    def __getattr__(self, name: str) -> 'Method':
        if name.startswith('_'):
            raise AttributeError(name)
        method = self.__dict__[name] = self._method(name, self._timeout)  # found without us next time
        return method

    def _method(self, name: str, timeout: float | None) -> 'Method':
        assert self._client is not None
        return Method(self._client, self._service, name, timeout, self._breaker, self._shard_key,
                      self._local, self._pin)

    def __repr__(self) -> str:
        return '<Proxy %s timeout=%gs>' % (self._service, self._timeout or 0)


class Method:
    __slots__ = ('client', 'service', 'name', 'timeout', 'breaker', 'shard_key', 'local', 'pin')

    def __init__(self, client: RpcClient | None, service: str, name: str, timeout: float | None,
                 breaker: Settings | bool | None = None, shard_key: Any = NO_KEY, local: bool = True,
                 pin: Pin | None = None):
        self.client = client
        self.service = service
        self.name = name
        self.timeout = timeout  # None: the client's
        self.breaker = breaker  # None: the client's config
        self.shard_key = shard_key  # NO_KEY: the method's own shard argument, if any
        self.local = local  # False: over the network even to an instance in this process
        self.pin = pin  # None: any version

    def target(self) -> RpcClient:
        """The client this call goes through."""
        assert self.client is not None
        return self.client

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._no_positional(args)
        return self._with_options('call_retrying', kwargs)

    def defer(self, *args: Any, **kwargs: Any) -> Call:
        self._no_positional(args)
        return self._with_options('call', kwargs)

    def _with_options(self, how: str, kwargs: dict[str, Any]) -> Any:
        """The client's `how` ('call' or 'call_retrying'; a subclass's, in the toolkit) with
        this proxy's breaker and shard key in effect."""
        send = getattr(self.target(), how)
        if self.breaker is None and self.shard_key is NO_KEY and self.local and self.pin is None:
            return send(self.service, self.name, kwargs, self.timeout)
        breaker, key = _breaker.set(self.breaker), _shard_key.set(self.shard_key)
        near, wanted = _local.set(self.local), _pin.set(self.pin)
        try:
            return send(self.service, self.name, kwargs, self.timeout)
        finally:
            _pin.reset(wanted)
            _local.reset(near)
            _shard_key.reset(key)
            _breaker.reset(breaker)

    def with_timeout(self, timeout: float) -> 'Method':
        """This method with a timeout of its own: `proxy.slow.with_timeout(10)(x=1)`."""
        return type(self)(self.client, self.service, self.name, timeout, self.breaker, self.shard_key,
                          self.local, self.pin)

    def _no_positional(self, args: tuple) -> None:
        if args:
            raise TypeError('%s.%s: RPC methods take keyword arguments only'
                            % (self.service, self.name))

    def __repr__(self) -> str:
        return '<Method %s.%s>' % (self.service, self.name)
