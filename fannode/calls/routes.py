"""Which instances of a service a call may go to when they run different versions.

A pinned call (`version='^1.2'`) goes only to matching instances (UnknownVersion when
none matches). An unpinned call goes to the service's *current* version:

- while every instance announces one version (or none), to all of them, as if versions
  did not exist: nothing is looked up, nothing changes for a cluster of one version;
- else to the ready instances matching the service's route (`fannode route Greeting 2`,
  the shared-config key `fannode.route.Greeting`), when at least one of them is ready;
- else (no route, or none of its instances ready) to the ready instances of the newest
  version: semantic versions in semver order, above any other label, above no version.

So a call never fails for want of the "right" version while some instance is ready; a
route is followed, not enforced (docs/versions.md). The route is read through the
registry's shared-config backend, found like every backend by the URL's scheme, and
followed by a subscription: a change reaches this client within a second. It is read in
a greenlet of its own; the first calls to a service of several versions wait for it at most
FIRST_WAIT (a one-shot `fannode request` must see the route, but a ZooKeeper that is away
would hold them for its whole connect timeout), then go as if there were no route.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import gevent
import gevent.event
from gevent.lock import Semaphore

from fannode.backends import load_backend
from fannode.core.keys import check_key
from fannode.core.versions import Pin, counts, existing, newest, route_key, version_of
from fannode.exceptions import UnknownVersion, UsageError

log = logging.getLogger(__name__)

RETRY_AFTER = 5.0  # seconds before asking again for a route that could not be read
FIRST_WAIT = 2.0   # seconds the first calls to a service of several versions wait for its route
SHOWN = 80  # characters of a bad route's value in the log


def current(instances: list, ready: list, route: Pin | None) -> tuple[list, list]:
    """(instances, ready ones) an unpinned call may go to (the rules above)."""
    first = version_of(instances[0]) if instances else ''
    if all(version_of(i) == first for i in instances):
        return instances, ready
    if route is not None:
        routed = [i for i in ready if route.matches(i.version)]
        if routed:
            return [i for i in instances if route.matches(i.version)], routed
    if not ready:
        return instances, ready
    top = newest(version_of(i) for i in ready)
    return [i for i in instances if version_of(i) == top], [i for i in ready if version_of(i) == top]


def parse_route(value: Any) -> Pin | None:
    """A route as kept in shared config: a version or range string; None when unset or bad
    (a bad one is logged: calls go to the newest version rather than fail)."""
    if value is None:
        return None
    try:
        return Pin(value)
    except UsageError as e:
        log.warning('ignoring the route %s: %s', repr(value)[:SHOWN], str(e)[:SHOWN * 2])
        return None


class Routes:
    """The routes of the services one client calls, read on first need and followed.
    `eligible` keeps its last answer per service, pinned and unpinned: one entry each,
    good while the registry's list and the pin (or route) are the same."""

    def __init__(self, url: str, connect: Callable[[str], Any] | None = None, first_wait: float = FIRST_WAIT):
        self.url = url
        self.first_wait = first_wait
        self.reading: dict[str, gevent.event.Event] = {}  # service → set once its route was read
        self.connect = connect or (lambda u: load_backend('fannode.config', u)(u))
        self.config: Any = None
        self.pins: dict[str, Pin | None] = {}
        self.retry: dict[str, float] = {}  # service → when to try reading its route again
        # (service, pinned?) → (registry list, pin or route text, instances, ready ones)
        self.cache: dict[tuple[str, bool], tuple[Any, str | None, list, list]] = {}
        self.single: dict[str, tuple[Any, bool]] = {}  # service → (registry list, one version only?)
        self.closed = False
        self.connecting = Semaphore()

    def route(self, service: str) -> Pin | None:
        """The route of `service`; the first ask starts reading it (then a subscription keeps
        it current) and waits for it at most `first_wait`: until then there is none."""
        if service in self.pins:
            pending = self.reading.get(service)
            if pending is not None and not pending.is_set():
                pending.wait(self.first_wait)
            return self.pins.get(service)
        if self.closed or time.monotonic() < self.retry.get(service, 0.0):
            return None
        key = route_key(service)
        try:
            check_key(key)
        except UsageError:  # a name no key can hold has no route: the newest, for good
            self.pins[service] = None
            return None
        self.pins[service] = None  # meanwhile: the newest
        done = self.reading[service] = gevent.event.Event()
        gevent.spawn(self._read, service, key, done)
        done.wait(self.first_wait)
        return self.pins.get(service)

    def _read(self, service: str, key: str, done: gevent.event.Event) -> None:
        try:
            with self.connecting:  # one connection, however many services are read at once
                if self.config is None and not self.closed:
                    self.config = self.connect(self.url)
            if self.closed:  # while it connected: what it made goes too
                self.close()
                return
            assert self.config is not None
            self.config.subscribe(key, self._changed)
            self.pins[service] = parse_route(self.config.get(key))
        except Exception as e:  # no shared config here: calls go to the newest version
            self.pins.pop(service, None)
            self.retry[service] = time.monotonic() + RETRY_AFTER
            log.warning('cannot read the route of %s at %s (calls go to its newest version): %s',
                        service, self.url, str(e) or type(e).__name__)
        finally:
            done.set()

    def _changed(self, key: str, value: Any) -> None:
        self.pins[key[len(route_key('')):]] = parse_route(value)

    def eligible(self, service: str, subject: str, known: Any, wanted: Pin | None) -> tuple[list, list]:
        """(instances, ready ones) of `service` a call may go to, `known` being what the
        client knows of them (instances, ready); UnknownVersion when none matches `wanted`."""
        instances, ready = known[0], known[1]
        if not instances:
            return instances, ready
        if wanted is None:
            if self.one_version(service, known):  # no route to read
                return instances, ready
            route = self.route(service)
            text = route.text if route is not None else None
        else:
            route, text = None, wanted.text
        cached = self.cache.get((service, wanted is not None))
        if cached is None or cached[0] is not known or cached[1] != text:  # the list, pin or route changed
            chosen = wanted.select(instances, ready) if wanted is not None else current(instances, ready, route)
            cached = self.cache[service, wanted is not None] = (known, text, *chosen)
        chosen_instances, chosen_ready = cached[2], cached[3]
        if not chosen_instances:
            raise UnknownVersion('%s: no instance of %s matches version %s: there are %s' % (
                subject, service, wanted.text if wanted else '', existing(instances))).as_received()
        return chosen_instances, chosen_ready

    def one_version(self, service: str, known: Any) -> bool:
        """Whether every instance announces the same version (or none), once per registry list."""
        seen = self.single.get(service)
        if seen is None or seen[0] is not known:
            first = version_of(known[0][0])
            seen = self.single[service] = (known, all(version_of(i) == first for i in known[0]))
        return seen[1]

    def close(self) -> None:
        self.closed = True
        if self.config is not None:
            self.config.close()
            self.config = None


def describe(service: str, instances: list, route: str | None) -> dict[str, Any]:
    """What `fannode route`, `discover --summary` and `top` show of a service: its instance
    counts, {version: count} newest first, its route, and the versions unpinned calls reach."""
    ready = [i for i in instances if getattr(i, 'ready', True)]
    _, reached = current(instances, ready, parse_route(route))
    return {'service': service, 'instances': len(instances), 'not_ready': len(instances) - len(ready),
            'versions': counts(instances), 'route': route, 'current': list(counts(reached))}
