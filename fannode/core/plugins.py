"""Plugins: code that watches every instance (error reporting, request logging) without
being a service. A plugin subclasses `fannode.Plugin` and overrides the hooks it needs.

They come from the `fannode.plugins` entry point group (loaded in every instance) and
from the service config's `plugins:` list. A plugin that raises is logged and never
breaks the request or the instance.
"""
from __future__ import annotations

import importlib
import logging
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable

from fannode.core import trace
from fannode.core.config import Config, import_object

log = logging.getLogger(__name__)

GROUP = 'fannode.plugins'


class Plugin:
    """Base class of plugins: every hook does nothing until overridden."""

    def on_start(self, container: Any) -> None:
        """The instance serves and is registered."""

    def on_stop(self, container: Any) -> None:
        """The instance stops, after its interfaces' on_stop."""

    def on_interface_installation(self, interface: Any) -> None:
        """An interface was created and configured, before it starts."""

    def on_error(self, exc: BaseException, context: dict[str, Any]) -> None:
        """An RPC method (not with an exception it declares in `raises=`), an event handler
        or an HTTP handler (a 500) raised. `context` has kind ('rpc', 'event', 'http'),
        name ('Greeting.greet'), service, trace_id and instance_id, and per kind a little
        more (event, event_id, attempt; method, path)."""

    def on_http_request(self, request: Any, response: Any, duration: float) -> None:
        """A WebInterface answered `request` (werkzeug) with `response`, in `duration` s."""


class PluginError(Exception):
    """A plugin cannot work as configured. The message completes the config error
    "plugins.0: module:Class <message>", e.g. "needs sentry-sdk (pip install sentry-sdk)"."""


def require(module: str, package: str) -> Any:
    """Import `module` for a plugin, or a PluginError naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PluginError('needs %s (pip install %s)' % (package, package)) from None


def name_of(plugin: Any) -> str:
    cls = type(plugin)
    return '%s:%s' % (cls.__module__, cls.__qualname__)


class Plugins:
    """The plugins of one instance, and the dispatcher that calls their hooks."""

    def __init__(self, plugins: list[Plugin] | None = None, instance_id: str = ''):
        self.plugins = list(plugins or [])
        self.instance_id = instance_id
        self._failed: set[tuple[str, str]] = set()

    def __bool__(self) -> bool:
        return bool(self.plugins)

    def call(self, hook: str, *args: Any) -> None:
        for plugin in self.plugins:
            try:
                getattr(plugin, hook)(*args)
            except Exception:
                self._failed_hook(plugin, hook)

    def _failed_hook(self, plugin: Plugin, hook: str) -> None:
        # Once per plugin and hook: a plugin failing on every request must not bury the
        # instance's own log lines under tracebacks.
        key = (name_of(plugin), hook)
        if key in self._failed:
            log.debug('plugin %s: %s failed again', *key, exc_info=True)
            return
        self._failed.add(key)
        log.exception('plugin %s: %s failed (the instance goes on; later failures of this hook '
                      'are logged at DEBUG)', *key)

    def error(self, exc: BaseException, kind: str, name: str, service: str = '', **extra: Any) -> None:
        context = {'kind': kind, 'name': name, 'service': service or name.partition('.')[0],
                   'trace_id': trace.get_id(), 'instance_id': self.instance_id, **extra}
        self.call('on_error', exc, context)

    def watch_handler(self, name: str, method: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """`method` (an event handler), reporting what it raises to on_error first."""
        if not self.plugins:
            return method

        def handle(event: Any) -> Any:
            try:
                return method(event)
            except Exception as e:
                self.error(e, 'event', name, event=event.type, event_id=event.id, attempt=event.attempt)
                raise
        return handle


@lru_cache(maxsize=None)
def installed() -> tuple[EntryPoint, ...]:
    """The plugin entry points, read once a process (as fannode.backends reads its own):
    reading every package's metadata costs an instance ~20 ms at start."""
    return tuple(entry_points(group=GROUP))


def load(config: Config, instance_id: str = '') -> Plugins:
    """The entry point plugins (one that cannot load is logged and left out), then the
    config's `plugins:` (a mistake there is a ConfigError naming file, line and key)."""
    found: list[Plugin] = []
    for ep in installed():
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Plugin)):
                raise TypeError('%s is not a fannode.Plugin subclass' % ep.value)
            found.append(cls())
        except Exception:
            log.exception('plugin %r (entry point %s) cannot load; going on without it', ep.name, ep.value)
    items = config.require('plugins', (list, type(None)), None) or []  # `plugins:` alone: none
    for i in range(len(items)):
        found.append(_from_config(config, 'plugins.%d' % i))
    return Plugins(found, instance_id)


def _from_config(config: Config, key: str) -> Plugin:
    item = config[key]
    if isinstance(item, Plugin):  # an object, from in-process tests
        return item
    kwargs: dict[str, Any] = {}
    spec_key = key
    if isinstance(item, Config):
        spec_key = key + '.class'
        item.require('class', (str, type))
        kwargs = item.to_dict()
        spec = kwargs.pop('class')
    elif isinstance(item, (str, type)):
        spec = item
    else:
        raise config.error(key, "expected 'module:Class' or a mapping with a 'class' key, got %s"
                           % type(item).__name__)
    if isinstance(spec, str):
        try:
            cls = import_object(spec)
        except ImportError as e:
            raise config.error(spec_key, str(e)) from None
    else:
        cls, spec = spec, '%s:%s' % (spec.__module__, spec.__qualname__)
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise config.error(spec_key, '%s is not a fannode.Plugin subclass' % spec)
    try:
        return cls(**kwargs)
    except PluginError as e:
        raise config.error(key, '%s %s' % (spec, e)) from None
    except Exception as e:  # a bad option, or the plugin refuses its settings
        raise config.error(key, 'cannot create %s: %s: %s' % (spec, type(e).__name__, e)) from None
