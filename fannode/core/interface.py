"""What a service author writes: a class with `@rpc` methods and a few hooks.

`@rpc` only marks a method; the container finds the marks when it installs the
interface, so the methods stay plain functions a unit test can call directly.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Protocol, TypeVar

from fannode.core.config import Config
from fannode.core.metrics import Metrics
from fannode.exceptions import UsageError

F = TypeVar('F', bound=Callable[..., Any])

# What every instance answers besides its interfaces' methods, under each service's name.
BUILTINS = ('ping', 'status', 'inspect', 'get_metrics', 'change_loglevel')


@dataclasses.dataclass(frozen=True)
class RpcSpec:
    name: str
    raises: tuple[type[BaseException], ...] = ()
    idempotent: bool = False
    shard: str | None = None


def rpc(func: F | None = None, *, raises: type[BaseException] | tuple[type[BaseException], ...] = (),
        idempotent: bool = False, shard: str | None = None) -> Any:
    """Expose a method over RPC. `raises` names exceptions that are part of the method's
    contract: they reach the caller as `RemoteError.<Name>` and are logged without a
    traceback, as an answer rather than a failure. `idempotent=True` says running it twice
    does no harm: a caller may then retry it on another instance after a lost connection,
    within the call's deadline (other methods are never retried once sent). `shard='store_id'`
    routes each call by that argument: every call with the same value goes to the same
    instance while the instances stay the same (docs/sharding.md)."""
    if not isinstance(raises, tuple):
        raises = (raises,)

    def mark(f: F) -> F:
        if shard is not None and shard not in inspect.signature(f).parameters:
            raise UsageError('@rpc(shard=%r) on %s: it has no argument %r' % (shard, f.__qualname__, shard))
        f._fannode_rpc = RpcSpec(f.__name__, raises, idempotent, shard)  # type: ignore[attr-defined]
        return f

    return mark(func) if func is not None else mark


def rpc_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """The `@rpc` functions of `cls` and its bases, by name."""
    found = {}
    for name in dir(cls):
        attr = getattr(cls, name, None)
        if callable(attr) and hasattr(attr, '_fannode_rpc'):
            found[attr._fannode_rpc.name] = attr
    return found


def describe(name: str, func: Callable[..., Any], builtin: bool = False) -> dict[str, Any]:
    """One method as `inspect` shows it."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.name != 'self']
    described = {'name': name, 'params': [p.name for p in params],
                 'signature': '(%s)' % ', '.join(str(p) for p in params),
                 'doc': inspect.getdoc(func) or '', 'builtin': builtin}
    routes = getattr(func, '_fannode_routes', None)  # its HTTP door too (fannode.web.doors.route)
    if routes:
        described['http'] = [{'path': r['path'], 'methods': r['methods'], 'status': r['status']} for r in routes]
    return described


def argument_problem(signature: inspect.Signature, kwargs: dict[str, Any]) -> str:
    """What is wrong with calling `signature` with `kwargs`, naming every bad argument:
    '' when they fit. The names come from the network (an RPC body, an HTTP query or body):
    at most ten unexpected ones are named, each cut to 64 characters."""
    params = signature.parameters
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    problems = []
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unexpected = [k for k in kwargs if k not in named]
        if unexpected:
            shown = ', '.join(repr(k[:64]) for k in unexpected[:10])
            problems.append('unexpected argument%s %s' % ('s' * (len(unexpected) > 1), shown))
    missing = [n for n in named if n not in kwargs and params[n].default is params[n].empty]
    if missing:
        problems.append('missing argument%s %s' % ('s' * (len(missing) > 1), ', '.join(repr(n) for n in missing)))
    return '; '.join(problems)


class Container(Protocol):
    """What an interface uses of the instance running it (fannode.runtime.container)."""

    client: Any       # the RPC client its proxies call through
    metrics: Metrics
    plugins: Any      # fannode.core.plugins.Plugins

    @property
    def shared_config(self) -> Any: ...  # a fannode.sharedconfig.SharedConfig

    def proxy(self, service: str, timeout: float | None = None, **options: Any) -> Any: ...  # see Interface.proxy

    def emit(self, event_type: str, body: dict | None = None, delay: float | None = None,
             ttl: float | None = None) -> None: ...


class Interface:
    """Base class of a service. The name under which it is registered comes from the
    config (`interfaces: {Greeting: ...}`); it defaults to the class name."""

    # The transports that serve it (entry point group `fannode.transports`).
    transports: tuple[str, ...] = ('rpc',)
    # The services it needs, {'hard': [...], 'soft': [...]}: not ready while a hard one has
    # no ready instance (fannode.core.dependencies); `dependencies:` in its config replaces it.
    dependencies: dict[str, list[str]] = {}

    def __init__(self, container: Container | None = None, name: str | None = None):
        self.container = container
        self.name = name or type(self).__name__
        self.config = Config({})

    def apply_config(self, config: Config) -> None:
        """Receives this interface's section of the service config before `on_start`."""
        self.config = config

    def on_start(self) -> None:
        """Called once the instance is ready to serve, before it is registered."""

    def on_stop(self) -> None:
        """Called after the instance left discovery and finished its requests."""

    def proxy(self, service: str, timeout: float | None = None, **options: Any) -> Any:
        """A proxy to call another service: `self.proxy('Greeting').greet(name='Joe')`;
        `breaker={'failures': 2, 'cooldown': 1}` or `breaker=False`, `shard_key=7`, `local=False`
        and `version='^1.2'`, as in fannode.proxy. Options are passed on only when given
        (a test double's container may take none)."""
        return self._running().proxy(service, timeout, **options)

    def emit(self, event_type: str, body: dict | None = None, delay: float | None = None,
             ttl: float | None = None) -> None:
        """Publish an event; the trace id of the current request goes with it. With `ttl`
        (seconds), one not handled that soon is dead-lettered, not run late."""
        self._running().emit(event_type, body or {}, delay, ttl)

    def unique_id(self, name: str) -> int:
        """An id of `name` (e.g. 'orders') that no other call in the cluster gets; this
        instance's ids of a name increase. Kept where the registry is; see docs/sharding.md."""
        return self.shared_config.unique_id(name)

    @property
    def metrics(self) -> Metrics:
        """This instance's metrics: `self.metrics.counter('greeted').inc()`, `.gauge(name)
        .set(v)`, `with self.metrics.timer(name): ...`; `get_metrics` answers them."""
        return self._running().metrics

    @property
    def shared_config(self) -> Any:
        """The cluster's shared config (kept where its registry is), e.g. in `on_start`:
        `self.style = self.shared_config.get('greeting.style', 'Hi')`, then
        `self.shared_config.subscribe('greeting.style', self.on_style)` to follow it."""
        return self._running().shared_config

    def _running(self) -> Container:
        if self.container is None:
            raise RuntimeError('%s is not running in a fannode instance' % self.name)
        return self.container
