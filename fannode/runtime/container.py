"""One service instance: installs the interfaces a config names, serves them through the
transports they name (rpc for every one, http for web interfaces) and keeps them
registered. `fannode instance` runs one of these per process."""
from __future__ import annotations

import difflib
import inspect
import logging
import os
import socket
import time
import uuid
from typing import Any, Callable

from fannode.backends import load_named
from fannode.core import current, loglevel, plugins, trace
from fannode.core.config import Config, import_object
from fannode.core.dependencies import Dependencies, declared, merged
from fannode.core.events import Event, EventSpec, check_body, check_type, event_handlers
from fannode.core.interface import BUILTINS, Interface, argument_problem, describe, rpc_methods
from fannode.core.limits import setting
from fannode.core.metrics import Metrics
from fannode.core.transport import Transport
from fannode.discovery import InstanceInfo, Registry, get_registry
from fannode.events import EventSystem, Subscription, get_events
from fannode.exceptions import BadArguments, Nack, UnknownMethod, UnknownService, UsageError
from fannode.runtime.dependencies import Readiness
from fannode.sharedconfig import SharedConfig, get_shared_config

log = logging.getLogger(__name__)

LEAVE_GRACE = 0.5  # seconds a stopping instance serves after leaving discovery (not on local://)
SERVICE_KEYS = ('backdoor', 'breakers', 'interfaces', 'plugins', 'version')  # and each transport's config_key


class Method:
    """An installed RPC method, its signature checked before it runs."""

    __slots__ = ('func', 'signature', 'raises', 'builtin', 'idempotent', 'shard', '_named', '_required', '_any')

    def __init__(self, func: Callable[..., Any], raises: tuple[type[BaseException], ...] = (),
                 builtin: bool = False, idempotent: bool = False, shard: str | None = None):
        self.func = func
        self.signature = inspect.signature(func)
        self.raises = raises
        self.builtin = builtin
        self.idempotent = idempotent or builtin  # the built-ins only read
        self.shard = shard
        params = self.signature.parameters.values()
        self._named = frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        self._required = frozenset(p.name for p in params if p.name in self._named and p.default is p.empty)
        self._any = any(p.kind == p.VAR_KEYWORD for p in params)

    def problem(self, kwargs: dict[str, Any]) -> str:
        """'' when `kwargs` fit; else what is wrong. Checked on every request, so the
        common case is two set comparisons."""
        keys = kwargs.keys()
        if self._required <= keys and (self._any or keys <= self._named):
            return ''
        return argument_problem(self.signature, kwargs)


class ServiceContainer:
    """One instance: its interfaces installed from the config, served by the transports
    they name (fannode.core.transport), registered in discovery while it runs."""

    def __init__(self, config: Config, registry: Registry | str, ip: str | None = None,
                 port: int | None = None, events: EventSystem | str | None = None,
                 sockets: dict[str, int] | None = None, client: Any = None):
        self.config = config
        self.id = uuid.uuid4().hex
        self.plugins = plugins.load(config, self.id)  # early: a config error leaves no socket open
        self.ip = ip or os.environ.get('FANNODE_IP') or None  # else the rpc transport's config says
        self.port = port
        self.version = os.environ.get('FANNODE_VERSION') or str(config.get('version', ''))  # node.yml's wins
        self.state = 'created'
        self.metrics = Metrics()
        self.registry = get_registry(registry) if isinstance(registry, str) else registry
        self.events = get_events(events) if isinstance(events, str) else events
        self.interfaces: dict[str, Interface] = {}
        self.methods: dict[str, dict[str, Method]] = {}
        self.handlers: list[tuple[str, str, EventSpec, Callable[[Event], Any]]] = []
        self.subscriptions: list[Subscription] = []
        self.sockets = sockets or {}  # listening sockets handed over by the node, by name
        self.info: InstanceInfo | None = None
        self.backdoor: Any = None
        self.dependencies: dict[str, Dependencies] = {}  # each interface's, by service name
        interfaces = config.section('interfaces')
        if not interfaces:
            raise config.error('interfaces', 'no interfaces configured (expected e.g. '
                                             '"interfaces: {Greeting: {class: greeting:Greeting}}")')
        for name in interfaces:
            self.install(name, interfaces.section(name))
        # Every instance answers the built-in methods over rpc; interfaces add what they need.
        names = ['rpc'] + [n for iface in self.interfaces.values() for n in type(iface).transports]
        classes = [load_named('fannode.transports', n) for n in dict.fromkeys(names)]
        config.check_keys(SERVICE_KEYS + tuple(c.config_key for c in classes if c.config_key))
        self.transports: list[Transport] = [cls(self) for cls in classes]
        self.rpc = self.transports[0]
        self.client = client if client is not None else self.rpc.client()
        mocked = {s.rpartition('.')[0] for s in getattr(self.client, 'mocks', None) or ()}  # fannode.testing's
        self.readiness = Readiness(self.registry, merged(self.dependencies), list(self.interfaces),
                                   self._announce_readiness, mocked)

    @staticmethod
    def _import_class(spec: Any, section: Config) -> type:
        if not isinstance(spec, str):
            close = difflib.get_close_matches('class', [str(k) for k in section], n=1)
            hint = " (is '%s' a misspelling?)" % close[0] if close else ''
            raise section.error('class', 'missing: expected "class: module:ClassName"%s' % hint)
        try:
            cls = import_object(spec)
        except ImportError as e:
            raise section.error('class', str(e)) from None
        if not isinstance(cls, type):
            raise section.error('class', '%s is not a fannode.Interface subclass' % spec)
        return cls

    def install(self, name: str, section: Config) -> Interface:
        """`class:` is "module:Class" in a file, or the class itself (fannode.testing)."""
        spec = section.get('class')
        cls = spec if isinstance(spec, type) else self._import_class(spec, section)
        if not issubclass(cls, Interface):
            raise section.error('class', '%s is not a fannode.Interface subclass' % (spec,))
        iface = cls(self, name)
        iface.apply_config(section)
        self.dependencies[name] = declared(cls, section)
        methods = {n: Method(getattr(self, 'builtin_' + n), builtin=True) for n in BUILTINS}
        for method_name, func in rpc_methods(cls).items():
            if getattr(func, '_fannode_routes', None) and 'http' not in cls.transports:  # fannode.web.doors
                raise section.error('class', '%s.%s has @route, but %s is not a WebInterface: nothing serves '
                                             'its HTTP door' % (cls.__name__, method_name, cls.__name__))
            marks = getattr(func, '_fannode_rpc')
            methods[method_name] = Method(getattr(iface, func.__name__), marks.raises, idempotent=marks.idempotent,
                                          shard=marks.shard)
        for handler_name, func in event_handlers(cls).items():
            handler = self.plugins.watch_handler(name + '.' + handler_name, getattr(iface, handler_name))
            self.handlers.append((name, handler_name, getattr(func, '_fannode_event'), handler))
        if self.handlers and self.events is None:
            raise section.error('class', '%s handles events, but this instance has no events backend' % spec)
        self.interfaces[name] = iface
        self.methods[name] = methods
        self.plugins.call('on_interface_installation', iface)
        return iface

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self.state = 'starting'
        trace.inherit()  # greenlets a handler spawns stay in its trace
        endpoint = self.rpc.start()['endpoint']
        for iface in self.interfaces.values():
            iface.on_start()
        for service, handler_name, spec, method in self.handlers:
            self.subscriptions.append(self._subscribe(service, handler_name, spec, method))
        meta: dict[str, Any] = {}
        meta.update(self._call_marks())
        for transport in self.transports[1:]:
            meta.update(transport.start())
        from fannode.core import backdoor
        if backdoor.wanted(self.config):
            self.backdoor = backdoor.start(self)
            meta['backdoor'] = self.backdoor.path  # a unix socket of this user's, on this host
            log.info('backdoor at %s (fannode shell --remote %s)', meta['backdoor'], self.id[:8])
        self.readiness.start()  # looks its dependencies up: registered ready or not from the start
        info = InstanceInfo(id=self.id, endpoint=endpoint, services=list(self.interfaces),
                            pid=os.getpid(), host=socket.gethostname(), version=self.version,
                            started=time.time(), meta=meta)
        self.readiness.announce(info)
        self.registry.register(info)
        self.info = info
        self.readiness.follow()
        self.state = 'running'
        log.info('serving %s at %s', ', '.join(self.interfaces), endpoint)
        self.plugins.call('on_start', self)

    def stop(self, timeout: float = 5.0) -> None:
        """Leave discovery, finish running requests within `timeout`, then stop."""
        if self.state in ('stopping', 'stopped'):
            return
        self.state = 'stopping'
        self.readiness.stop()
        if self.info is not None:
            self.registry.unregister(self.info)
            # callers learn it left (a push from the hub or ZooKeeper) while it still serves, so none is
            # sent a call it drops; local:// tells them at once. Part of `timeout`, at most half of it:
            # running requests keep the rest to finish
            default = 0.0 if self.registry.url.startswith('local://') else LEAVE_GRACE
            grace = min(setting('FANNODE_LEAVE_GRACE', default, low=0.0), timeout / 2)
            time.sleep(grace)
            timeout -= grace
        for transport in reversed(self.transports[1:]):  # health checks say 503, running requests finish
            transport.stop(timeout)
        for sub in self.subscriptions:  # no new events; running handlers finish and ack
            sub.backend.unsubscribe(sub, timeout)
        if not self.rpc.stop(timeout):
            log.warning('%d request(s) still running after %gs; stopping anyway',
                        self.rpc.in_flight(), timeout)
        for iface in self.interfaces.values():
            try:
                iface.on_stop()
            except Exception:
                log.exception('%s.on_stop failed', iface.name)
        self.plugins.call('on_stop', self)
        if self.backdoor is not None:
            self.backdoor.stop(timeout=0)
        if self.events is not None:
            self.events.close(timeout)  # sends what handlers emitted
        for transport in self.transports:
            transport.close()
        self.client.close()
        if self._shared_config is not None:  # after on_stop, which may still read it
            self._shared_config.close()
        self.registry.close()
        self.state = 'stopped'
        log.info('stopped')

    def _call_marks(self) -> dict[str, Any]:
        """What callers read from the registration (fannode.calls): the methods they may
        retry on another instance, and the argument each sharded method is routed by."""
        mine = [('%s.%s' % (service, name), method) for service, methods in self.methods.items()
                for name, method in methods.items() if not method.builtin]
        marks: dict[str, Any] = {}
        idempotent = sorted(subject for subject, method in mine if method.idempotent)
        if idempotent:
            marks['idempotent'] = idempotent
        shards = {subject: method.shard for subject, method in mine if method.shard}
        if shards:
            marks['shards'] = shards
        return marks

    def _announce_readiness(self) -> None:
        """A dependency came or went (fannode.runtime.dependencies): register again."""
        if self.info is not None and self.state in ('starting', 'running'):
            self.readiness.announce(self.info)
            self.registry.register(self.info)

    # -- calls -------------------------------------------------------------------

    _shared_config: SharedConfig | None = None

    @property
    def shared_config(self) -> SharedConfig:
        """Made on first use: most services never read shared config, so most instances
        open no connection for it."""
        if self._shared_config is None:
            self._shared_config = get_shared_config(self.registry.url)
        return self._shared_config

    def proxy(self, service: str, timeout: float | None = None, **options: Any) -> Any:
        return self.client.proxy(service, timeout, **options)  # breaker=, shard_key=, local=, version=

    def emit(self, event_type: str, body: dict | None = None, delay: float | None = None,
             ttl: float | None = None) -> None:
        if self.events is None:
            raise UsageError('cannot emit %r: this instance has no events backend' % event_type)
        event = Event.new(check_type(event_type), check_body(event_type, body), trace.ensure_id(),
                          ','.join(self.interfaces), ttl)
        self.events.emit(event, delay)

    def _subscribe(self, service: str, handler_name: str, spec: EventSpec,
                   method: Callable[[Event], Any]) -> Subscription:
        """Once-per-service handlers share one durable queue, so instances compete for its
        events; a broadcast handler gets a queue of its own that goes when it does."""
        queue = '%s.%s' % (service, handler_name)
        if spec.broadcast:
            queue += '.' + self.id[:12]
        client, record, name = self.client, self.metrics.record, '%s.%s' % (service, handler_name)

        def handle(event: Event) -> None:
            span = trace.begin(event.trace_id, event.span)  # the emitter's span is our parent
            current.client.set(client)
            failed = True
            try:
                method(event)
                failed = False
            finally:
                seconds = span.end('event', name, 'error' if failed else 'ok', event=event.type)
                record(name, seconds, failed, 'event')

        assert self.events is not None  # install() refuses handlers without an events backend
        return self.events.subscribe(queue, list(spec.patterns), handle, retry=spec.retry,
                                     sequential=spec.sequential, durable=not spec.broadcast,
                                     exclusive=spec.broadcast, shard=spec.shard,
                                     member=self.id if spec.shard else None)

    def dispatch(self, subject: str, body: Any) -> Callable[[], Any]:
        """The call that answers `subject` ('Service.method') with `body` (its keyword
        arguments); raises a Nack at once when it cannot be run."""
        service, _, name = subject.rpartition('.')
        methods = self.methods.get(service)
        if methods is None:
            raise UnknownService("this instance has no service '%s' (it serves %s)"
                                 % (service, ', '.join(self.methods)))
        method = methods.get(name)
        if method is None:
            close = difflib.get_close_matches(name, methods, n=1)
            hint = " (did you mean '%s'?)" % close[0] if close else ''
            raise UnknownMethod("%s has no method '%s'%s" % (service, name, hint))
        kwargs = body if body is not None else {}
        if not isinstance(kwargs, dict):
            raise BadArguments('%s: arguments must be a map of names to values' % subject)
        problem = method.problem(kwargs)
        if problem:
            raise BadArguments('%s%s: %s' % (subject, method.signature, problem))
        func, client, plugged = method.func, self.client, self.plugins

        def run() -> Any:
            current.client.set(client)
            try:
                return func(**kwargs)
            except Exception as e:  # the server logs it; plugins hear of the unexpected ones
                if plugged and not isinstance(e, (Nack, *method.raises)):
                    plugged.error(e, 'rpc', subject)
                raise
        return run

    def is_builtin(self, subject: str) -> bool:
        service, _, name = subject.rpartition('.')
        method = self.methods.get(service, {}).get(name)
        return method is not None and method.builtin

    def is_expected(self, exc: BaseException, subject: str) -> bool:
        service, _, name = subject.rpartition('.')
        method = self.methods.get(service, {}).get(name)
        return method is not None and isinstance(exc, method.raises)

    # -- built-in methods, on every interface ------------------------------------

    def builtin_ping(self, payload: Any = None) -> Any:
        """Answers with `payload`: proof that the instance serves requests."""
        return payload

    def builtin_status(self) -> dict[str, Any]:
        """Identity and state of this instance."""
        info = self.info.to_dict() if self.info else {}
        # Not counting this status request itself.
        return dict(info, state=self.state, in_flight=max(0, self.rpc.in_flight() - 1),
                    uptime=round(time.time() - self.metrics.started, 3), ready=self.readiness.ready,
                    dependencies=self.readiness.describe())

    def builtin_inspect(self) -> dict[str, Any]:
        """The RPC methods of every interface here, with signatures and docs."""
        return {service: [describe(n, m.func, m.builtin)
                          for n, m in sorted(methods.items())]
                for service, methods in self.methods.items()}

    def builtin_change_loglevel(self, level: str, logger: str = '',
                                period: float | None = None) -> dict[str, Any]:
        """Set a logger's level (the root logger when ''), for `period` seconds if given."""
        return dict(loglevel.change_level(level, logger, period), pid=os.getpid())

    def builtin_get_metrics(self) -> dict[str, Any]:
        """Call counts and latencies per method, and process figures; the circuit breakers
        of the services this instance called, if any."""
        snapshot = self.metrics.snapshot()
        breakers = getattr(self.client, 'breakers', None)  # fannode.calls.breaker.Breakers
        if breakers is not None and breakers.services:
            snapshot['breakers'] = breakers.snapshot()
        return snapshot
