"""Services under test, running in the test's own process.

Each service is a real instance (ServiceContainer) serving over ZeroMQ on 127.0.0.1, on
a private `local://` registry and event broker, so calls and events take the same code
path as in production, without a hub. Calls between them (and the test's) are local
calls (fannode.calls.local): no network hop, the same semantics. Every RPC call and
event the services (or the test) make is recorded for the assertions.
"""
from __future__ import annotations

import contextvars
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, cast

from fannode.core import serial, trace
from fannode.core.config import Config
from fannode.core.events import Event, check_body, check_type
from fannode.core.interface import Interface
from fannode.discovery.local import LocalRegistry
from fannode.events.local import LocalEvents
from fannode.calls.client import Proxy, RpcClient
from fannode.zmqrpc.connection import Call

_ids = itertools.count(1)
MISSING: Any = object()


@dataclass
class RecordedCall:
    subject: str
    kwargs: dict[str, Any]
    trace_id: str
    mocked: bool

    def __str__(self) -> str:
        return '%s(%s)' % (self.subject, ', '.join('%s=%r' % kv for kv in self.kwargs.items()))


@dataclass
class Handled:
    event: Event
    service: str
    error: BaseException | None = None


@dataclass
class Recorder:
    calls: list[RecordedCall] = field(default_factory=list)
    emitted: list[Event] = field(default_factory=list)
    handled: list[Handled] = field(default_factory=list)
    logs: list[logging.LogRecord] = field(default_factory=list)


class RecordingClient(RpcClient):
    """The real client, which records every call and answers mocked ones itself."""

    def __init__(self, registry, recorder: Recorder, mocks: dict[str, Any], timeout: float):
        super().__init__(registry, timeout=timeout, local=True)  # services here are called directly
        self.recorder, self.mocks = recorder, mocks

    def call(self, service: str, method: str, kwargs: dict[str, Any], timeout: float | None = None) -> Call:
        subject = '%s.%s' % (service, method)
        mock = self.mocks.get(subject, MISSING)
        self.recorder.calls.append(RecordedCall(subject, dict(kwargs), trace.ensure_id(), mock is not MISSING))
        if mock is MISSING:
            return super().call(service, method, kwargs, timeout)
        call = Call(subject, next(_ids), timeout or self.timeout)
        try:
            value = mock(**kwargs) if callable(mock) else mock
        except Exception as e:
            call.fail(e)
            return call
        if isinstance(value, BaseException):
            call.fail(value)
        else:
            call.succeed(value)
        return call


class RecordingEvents(LocalEvents):
    def __init__(self, url: str, recorder: Recorder, service: str = ''):
        super().__init__(url)
        self.recorder, self.service = recorder, service

    def emit(self, event: Event, delay: float | None = None) -> None:
        super().emit(event, delay)  # raises for an event that cannot be sent: not emitted, then
        # What went out, as a handler gets it: later changes to the caller's body are not seen.
        self.recorder.emitted.append(Event.from_dict(cast(dict, serial.loads(serial.dumps(event.to_dict())))))

    def subscribe(self, queue, patterns, handler, **kwargs):
        def recorded(event: Event) -> None:
            try:
                handler(event)
            except BaseException as e:
                self.recorder.handled.append(Handled(event, self.service, e))
                raise
            self.recorder.handled.append(Handled(event, self.service))
        return super().subscribe(queue, patterns, recorded, **kwargs)


class _LogTap(logging.Handler):
    def __init__(self, recorder: Recorder):
        super().__init__()
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        record.trace_id = trace.get_id()
        self.recorder.logs.append(record)


def wait_until(predicate: Callable[[], Any], timeout: float = 2.0, message: str = '',
               interval: float = 0.005) -> Any:
    """Poll `predicate` every `interval` seconds (letting the services run) until it is
    truthy; its value, or AssertionError after `timeout` seconds."""
    import gevent
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %gs waiting for %s' % (timeout, message or predicate))
        gevent.sleep(interval)


def _as_sent(value: Any) -> Any:
    """`value` as the codec carries it (a tuple as a list), to compare with what was sent."""
    try:
        return serial.loads(serial.dumps(value))
    except (TypeError, ValueError):
        return value


def _matches(expected: Any, seen: Any) -> bool:
    """Partial matching: every key expected is there with a matching value."""
    if isinstance(expected, dict):
        return isinstance(seen, dict) and all(k in seen and _matches(v, seen[k]) for k, v in expected.items())
    return expected == seen


class TestCluster:
    """`TestCluster(Greeting, Listen, mocks={'Other.method': value_or_callable},
    config={'Greeting': {'key': 'value'}})`: the services running, each one instance."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, *services: type[Interface], mocks: dict[str, Any] | None = None,
                 config: dict[str, dict[str, Any]] | None = None, timeout: float = 3.0):
        self.url = 'local://test-%s' % uuid.uuid4().hex[:12]
        self.recorder = Recorder()
        self.mocks = dict(mocks or {})
        self.timeout = timeout
        self.containers: list[Any] = []
        self.interfaces: dict[str, Interface] = {}
        self.registry = LocalRegistry(self.url)
        self.client = RecordingClient(self.registry, self.recorder, self.mocks, timeout)
        self.events = RecordingEvents(self.url, self.recorder)
        self._tap = _LogTap(self.recorder)
        root = logging.getLogger()
        self._level = root.level
        root.setLevel(min(root.level or logging.WARNING, logging.INFO))  # records INFO lines too
        root.addHandler(self._tap)
        try:
            for cls in services:
                self.add(cls, config=(config or {}).get(cls.__name__))
        except BaseException:
            self.stop()
            raise

    # -- running -----------------------------------------------------------------

    def add(self, cls: type[Interface], name: str | None = None, config: dict[str, Any] | None = None,
            instances: int = 1) -> Interface:
        """Start `instances` more instances of `cls`; the interface object of the first."""
        from fannode.runtime.container import ServiceContainer
        name = name or cls.__name__
        section = {'class': cls, **(config or {})}
        if _is_web(cls):  # a free port on loopback, unless the test asks for one
            section.setdefault('host', '127.0.0.1')
            section.setdefault('port', 0)
        if instances < 1:
            raise ValueError('%s: instances must be 1 or more, got %d' % (name, instances))
        first: Interface | None = None
        for _ in range(instances):
            registry = LocalRegistry(self.url)
            container = ServiceContainer(Config({'interfaces': {name: section}}, '<%s>' % name), registry,
                                         events=RecordingEvents(self.url, self.recorder, name),
                                         client=RecordingClient(registry, self.recorder, self.mocks, self.timeout))
            container.start()
            self.containers.append(container)
            first = first or container.interfaces[name]
        assert first is not None
        self.interfaces.setdefault(name, first)
        return first

    def stop(self) -> None:
        for container in reversed(self.containers):
            container.stop(timeout=1.0)
        self.containers.clear()
        self.client.close()
        self.events.close(1.0)
        self.registry.close()
        logging.getLogger().removeHandler(self._tap)
        logging.getLogger().setLevel(self._level)

    def __enter__(self) -> 'TestCluster':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- acting ------------------------------------------------------------------

    def proxy(self, service: str, timeout: float | None = None, **options: Any) -> Proxy:
        """As `fannode.proxy`: breaker=, shard_key=, local=False (over ZeroMQ), version=."""
        return self.client.proxy(service, timeout, **options)

    def emit(self, event_type: str, body: dict | None = None, trace_id: str | None = None,
             delay: float | None = None) -> Event:
        event = Event.new(check_type(event_type), check_body(event_type, body), trace_id or trace.new_id(), 'test')
        self.events.emit(event, delay)
        return event

    def interface(self, name: str) -> Interface:
        return self.interfaces[name]

    def web(self, name: str | None = None):
        """A werkzeug test client on a WebInterface (the only one when `name` is None)."""
        from werkzeug.test import Client
        webs: dict[str, Any] = {n: i for n, i in self.interfaces.items() if _is_web(type(i))}
        if name is None and len(webs) == 1:
            name = next(iter(webs))
        if name not in webs:
            raise KeyError('no web interface %r here (have: %s)' % (name, ', '.join(webs) or 'none'))
        wsgi = webs[name].wsgi

        def app(environ: dict, start_response: Any) -> Any:
            # Each request in a context of its own, as the server gives it: the trace id
            # and client a request sets must not stay behind in the test's context.
            return contextvars.Context().run(lambda: list(wsgi(environ, start_response)))
        return Client(app)

    # -- looking -----------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        return self.recorder.calls

    @property
    def emitted(self) -> list[Event]:
        return self.recorder.emitted

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        """Events dead-lettered so far, as the hub keeps them: `queue`, `event`, `attempts`, `reason`."""
        return self.events.dead_letters()

    def calls_to(self, subject: str) -> list[RecordedCall]:
        return [c for c in self.recorder.calls if c.subject == subject]

    def assert_rpc_called(self, subject: str, **kwargs: Any) -> RecordedCall:
        """A call of `subject` was made with (at least) these arguments; the first such."""
        for call in self.calls_to(subject):
            if _matches(kwargs, call.kwargs):
                return call
        want = '%s(%s)' % (subject, ', '.join('%s=%r' % kv for kv in kwargs.items()))
        raise AssertionError('expected a call %s; calls made: %s' % (
            want, '; '.join(str(c) for c in self.recorder.calls) or 'none'))

    def assert_rpc_not_called(self, subject: str) -> None:
        made = self.calls_to(subject)
        if made:
            raise AssertionError('expected no call of %s; made: %s' % (subject, '; '.join(map(str, made))))

    def assert_emitted(self, event_type: str, body: dict | None = None) -> Event:
        """An event of this type was emitted with (at least) this body; the first such."""
        expected = _as_sent(body or {})
        for event in self.recorder.emitted:
            if event.type == event_type and _matches(expected, event.body):
                return event
        raise AssertionError('expected an event %s %s; emitted: %s' % (
            event_type, body or {}, '; '.join('%s %s' % (e.type, e.body) for e in self.recorder.emitted) or 'none'))

    def assert_not_emitted(self, event_type: str) -> None:
        made = [e for e in self.recorder.emitted if e.type == event_type]
        if made:
            raise AssertionError('expected no event %s; emitted: %s' % (event_type, '; '.join(str(e.body) for e in made)))

    def wait_handled(self, event_type: str, count: int = 1, timeout: float = 2.0) -> list[Handled]:
        """Wait until handlers have finished `count` events of this type (raised or not)."""
        def done() -> list[Handled]:
            found = [h for h in self.recorder.handled if h.event.type == event_type]
            return found if len(found) >= count else []
        try:
            return wait_until(done, timeout)
        except AssertionError:
            seen = ', '.join('%s by %s' % (h.event.type, h.service) for h in self.recorder.handled) or 'none'
            raise AssertionError('expected %d handled %s event(s) within %gs; handled: %s'
                                 % (count, event_type, timeout, seen)) from None

    def assert_logged(self, text: str, trace_id: str | None = None, level: str | None = None) -> logging.LogRecord:
        for record in self.recorder.logs:
            if text in record.getMessage() and (trace_id is None or getattr(record, 'trace_id', None) == trace_id) \
                    and (level is None or record.levelname == level.upper()):
                return record
        raise AssertionError('expected a log line with %r%s; logged: %s' % (
            text, ' and trace id %s' % trace_id if trace_id else '',
            '; '.join('[%s] %s' % (getattr(r, 'trace_id', None) or '-', r.getMessage()) for r in self.recorder.logs[-20:]) or 'none'))


def _is_web(cls: type) -> bool:
    import sys
    web = sys.modules.get('fannode.web.interface')  # only a web service has imported it
    return web is not None and issubclass(cls, web.WebInterface)
