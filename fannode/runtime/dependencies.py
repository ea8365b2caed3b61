"""Whether an instance is ready: it is while every hard dependency it declares
(fannode.core.dependencies) has a ready instance in discovery. Followed through the
registry's listeners, so the instance registers again, ready or not, as soon as a
dependency comes or goes; soft ones only change what it shows and logs.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

import gevent
import gevent.event

from fannode.core.dependencies import Dependencies, missing_hard
from fannode.discovery import InstanceInfo, Registry

log = logging.getLogger(__name__)

RETRY_EVERY = 1.0  # a dependency the registry could not look up is tried again this often


class Readiness:
    """The state of one instance's dependencies; `changed()` runs (in a greenlet of its
    own, never inside a registry callback) after each change of what is missing."""

    def __init__(self, registry: Registry, declared: Dependencies, serves: list[str],
                 changed: Callable[[], None], mocked: Iterable[str] = ()):
        self.registry = registry
        self.declared = declared
        self.services = set(declared.hard + declared.soft)
        self.serves = set(serves)
        # Services whose calls fannode.testing answers itself: present, so a service with a
        # hard dependency can be tested with that dependency mocked.
        self.mocked = set(mocked)
        self.changed = changed
        self.present: dict[str, bool] = {}
        self.cycles: set[str] = set()  # services found in a hard cycle with us, warned once each
        self.watched: set[str] = set()
        self.stopped = False
        self._wake = gevent.event.Event()
        self._loop: gevent.Greenlet | None = None
        self.announced: tuple[bool, list[str]] | None = None

    # -- what callers read -------------------------------------------------------

    @property
    def ready(self) -> bool:
        return not self.missing_hard()

    def missing(self) -> list[str]:
        """Declared services with no ready instance now, hard ones first."""
        return [s for s in self.declared.hard + self.declared.soft if not self._there(s)]

    def missing_hard(self) -> list[str]:
        return [s for s in self.declared.hard if not self._there(s)]

    def _there(self, service: str) -> bool:
        return bool(self.present.get(service)) or service in self.mocked

    def describe(self) -> dict[str, list[str]]:
        return dict(self.declared.to_dict(), missing=self.missing())

    def announce(self, info: InstanceInfo) -> None:
        """Write the state into what the instance registers."""
        self.announced = (self.ready, self.missing())
        info.ready = self.ready
        if self.declared:  # an instance that declares nothing announces nothing new
            info.meta['dependencies'] = self.declared.to_dict()
            info.meta['missing'] = self.missing()

    # -- following discovery -----------------------------------------------------

    def start(self) -> None:
        """Look up every dependency (which watches it); called before the instance
        registers, so it registers ready or not from the start."""
        if not self.declared:
            return
        self.registry.add_listener(self._on_change)
        self._lookup()
        for service in self.missing():
            kind = 'hard' if service in self.declared.hard else 'soft'
            log.warning('%s dependency %s has no ready instance%s', kind, service,
                        '; not ready until it has' if kind == 'hard' else '; calls to it will fail')

    def follow(self) -> None:
        """Once registered: announce every change from now on (and any since `announce`)."""
        if self.declared and self._loop is None:
            self._loop = gevent.spawn(self._follow)

    def stop(self) -> None:
        self.stopped = True
        if self._loop is not None:  # waited for: a register it is sending must land before the unregister
            self._loop.kill(block=True, timeout=1.0)

    def _lookup(self) -> None:
        for service in self.declared.hard + self.declared.soft:
            if service in self.watched:
                continue
            try:
                instances = self.registry.lookup(service)
            except Exception as e:  # the registry's outage is logged where it happens
                log.debug('cannot look up %s yet: %s', service, e)
                self.present.setdefault(service, False)
                continue
            self.watched.add(service)
            self.present[service] = self._is_present(service, instances)

    def _on_change(self, service: str, instances: list[InstanceInfo]) -> None:
        """A registry listener: runs in the registry's own callback, so it only notes."""
        if self.stopped or service not in self.services:
            return
        now = self._is_present(service, instances)
        was = self.present.get(service)
        self.present[service] = now
        if was is None or was == now:  # the first sight (the lookup in start) is logged there
            return
        kind = 'hard' if service in self.declared.hard else 'soft'
        if now:
            log.info('%s dependency %s has a ready instance again%s', kind, service,
                     '; ready' if kind == 'hard' and self.ready else '')
        else:
            log.warning('%s dependency %s has no ready instance%s', kind, service,
                        '; not ready until it has' if kind == 'hard' else '; calls to it will fail')
        self._wake.set()

    def _is_present(self, service: str, instances: list[InstanceInfo]) -> bool:
        for instance in instances:
            if instance.ready:
                return True
            if service in self.declared.hard and self._waits_only_for_us(instance):
                if service not in self.cycles:
                    self.cycles.add(service)
                    log.warning('hard dependency cycle: %s needs %s and %s needs %s; each counts '
                                'the other as present while that is all it misses', ', '.join(
                                    sorted(self.serves)), service, service, ', '.join(missing_hard(instance)))
                return True
        return False

    def _waits_only_for_us(self, instance: InstanceInfo) -> bool:
        """True when `instance` is not ready only because services we serve are missing
        (A hard on B and B hard on A): counting it absent would leave both waiting for good."""
        missing = missing_hard(instance)
        return bool(missing) and set(missing) <= self.serves

    def _follow(self) -> None:
        while not self.stopped:
            if len(self.watched) < len(self.present):  # a lookup that failed: try again
                self._lookup()
            retry = len(self.watched) < len(self.present)
            if self.announced != (self.ready, self.missing()):
                try:
                    self.changed()
                except Exception as e:  # the registry logs its outages; try again shortly
                    (log.debug if self.announced is None else log.warning)(
                        'could not announce the new state of the dependencies: %s', e)
                    self.announced, retry = None, True
            self._wake.wait(RETRY_EVERY if retry else None)
            self._wake.clear()
