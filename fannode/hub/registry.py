"""The hub's registry: instances kept alive by heartbeats, watchers told of changes
(versions and watches: fannode.hub.watches)."""
from __future__ import annotations

import collections
import logging
import time
import uuid
from typing import Any, Callable

from fannode.core.limits import KIB, MIB, setting
from fannode.exceptions import BadArguments
from fannode.hub.budget import Budget, footprint
from fannode.hub.watches import Watches

log = logging.getLogger(__name__)

INSTANCE_TTL = 2.0   # an instance missing heartbeats this long is dropped
WATCH_TTL = 5.0      # a watcher that stops syncing this long is forgotten
# Instances and watches kept, in bytes; over it, new ones are refused (never dropped).
BUDGET = setting('FANNODE_HUB_REGISTRY_BUDGET', 32 * MIB, MIB)
MAX_INSTANCE = setting('FANNODE_HUB_MAX_INSTANCE', 64 * KIB, KIB)  # one instance map, meta included

Notify = Callable[[bytes, str, dict], None]


class RegistryState:
    def __init__(self, notify: Notify, instance_ttl: float = INSTANCE_TTL, watch_ttl: float = WATCH_TTL):
        self.epoch = uuid.uuid4().hex[:8]
        self.notify = notify
        self.instance_ttl = instance_ttl
        self.instances: dict[str, dict[str, Any]] = {}
        self.expires: dict[str, float] = {}
        self.sizes: dict[str, int] = {}
        self.counts: collections.Counter[str] = collections.Counter()  # instances per service
        self.budget = Budget('the registry', BUDGET, 'FANNODE_HUB_REGISTRY_BUDGET')
        self.watchers = Watches(self.budget, watch_ttl, self.epoch)
        self._broken: set[str] = set()  # kinds of failure already logged by expire()

    # -- instances ---------------------------------------------------------------

    def register(self, info: dict[str, Any]) -> None:
        size = footprint(info)
        if size > MAX_INSTANCE:
            raise BadArguments('hub.register: the instance map takes about %d bytes, the most is %d '
                               '($FANNODE_HUB_MAX_INSTANCE)' % (size, MAX_INSTANCE))
        self.budget.claim(size - self.sizes.get(info['id'], 0), 'hub.register: %s')
        self.sizes[info['id']] = size
        old = self.instances.get(info['id'])
        self.instances[info['id']] = info
        self.expires[info['id']] = time.monotonic() + self.instance_ttl
        if old is not None:
            self.counts.subtract(set(old['services']))
        self.counts.update(set(info['services']))
        self._changed(set(info['services']) | set(old['services'] if old else ()))

    def unregister(self, instance_id: str) -> bool:
        info = self.instances.pop(instance_id, None)
        self.expires.pop(instance_id, None)
        self.budget.give(self.sizes.pop(instance_id, 0))
        if info is not None:
            self.counts.subtract(set(info['services']))
            self._changed(set(info['services']))
        return info is not None

    def heartbeat(self, ids: list[str]) -> list[str]:
        """Extend the leases of `ids`; returns those unknown here (to re-register)."""
        until = time.monotonic() + self.instance_ttl
        unknown = []
        for instance_id in ids:
            if instance_id in self.expires:
                self.expires[instance_id] = until
            else:
                unknown.append(instance_id)
        return unknown

    def expire(self) -> list[dict[str, Any]]:
        """Drop instances whose lease ran out and watches that lapsed; returns the instances.
        One entry that cannot be handled is dropped and logged, and the rest go on."""
        now = time.monotonic()
        gone = [self.instances[i] for i, t in list(self.expires.items()) if t < now]
        for info in gone:
            try:
                self.unregister(info['id'])
            except Exception:
                self._once('unregister', 'could not expire instance %r' % (info.get('id'),))
                self.instances.pop(info.get('id'), None)  # type: ignore[arg-type]
                self.expires.pop(info.get('id'), None)  # type: ignore[arg-type]
        for service in self.watchers.expire(now):
            self._forget(service)
        self.budget.report(now)
        return gone

    def _once(self, kind: str, message: str) -> None:
        if kind not in self._broken:
            self._broken.add(kind)
            log.exception('%s (logged once)', message)

    # -- lookups and watches -----------------------------------------------------

    def lookup(self, service: str) -> list[dict[str, Any]]:
        return sorted((i for i in self.instances.values() if service in i['services']),
                      key=lambda i: i['started'])

    def snapshot(self, service: str) -> dict[str, Any]:
        return {'service': service, 'version': self.version(service), 'instances': self.lookup(service)}

    def services(self) -> dict[str, list[dict[str, Any]]]:
        # one pass over the instances (a lookup per service was services × instances)
        found: dict[str, list[dict[str, Any]]] = {}
        for info in self.instances.values():
            for service in set(info['services']):
                found.setdefault(service, []).append(info)
        return {name: sorted(found[name], key=lambda i: i['started']) for name in sorted(found)}

    def version(self, service: str) -> str:
        return self.watchers.version(service)

    def watch(self, peer: bytes, services: list[str], verb: str = 'hub.lookup') -> None:
        """Watch (or keep watching) `services` for `peer`; new watches count against the
        budget, and are all refused when they do not fit."""
        self.watchers.renew(peer, services, verb, 'service(s)')

    def sync(self, peer: bytes, versions: dict[str, str]) -> dict[str, Any]:
        """Renew `peer`'s watches; return snapshots of the services it has stale."""
        self.watch(peer, list(versions), 'hub.sync')
        return {s: self.snapshot(s) for s, v in versions.items() if v != self.version(s)}

    def _changed(self, services: set[str]) -> None:
        for service in services:
            self.watchers.changed(service)
            snapshot = None
            for peer in self.watchers.peers(service):
                snapshot = snapshot or self.snapshot(service)
                self.notify(peer, 'registry.changed', snapshot)
            self._forget(service)

    def _forget(self, service: str) -> None:
        """A service nobody runs keeps no count, nor a version unless watched."""
        running = self.counts[service] > 0
        if not running:
            self.counts.pop(service, None)
        self.watchers.forget(service, running)
