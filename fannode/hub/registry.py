"""The hub's registry: instances kept alive by heartbeats, watchers told of changes.

Versions are `<epoch>.<n>`: a restarted hub has a new epoch, so no client mistakes its
fresh state for the one it cached before the restart.
"""
from __future__ import annotations

import collections
import itertools
import time
import uuid
from typing import Any, Callable

INSTANCE_TTL = 2.0   # an instance missing heartbeats this long is dropped
WATCH_TTL = 5.0      # a watcher that stops syncing this long is forgotten

Notify = Callable[[bytes, str, dict], None]


class RegistryState:
    def __init__(self, notify: Notify, instance_ttl: float = INSTANCE_TTL, watch_ttl: float = WATCH_TTL):
        self.epoch = uuid.uuid4().hex[:8]
        self.notify = notify
        self.instance_ttl = instance_ttl
        self.watch_ttl = watch_ttl
        self.instances: dict[str, dict[str, Any]] = {}
        self.expires: dict[str, float] = {}
        self.versions: dict[str, str] = {}
        self.watchers: dict[str, dict[bytes, float]] = collections.defaultdict(dict)
        self._counter = itertools.count(1)

    # -- instances ---------------------------------------------------------------

    def register(self, info: dict[str, Any]) -> None:
        old = self.instances.get(info['id'])
        self.instances[info['id']] = info
        self.expires[info['id']] = time.monotonic() + self.instance_ttl
        self._changed(set(info['services']) | set(old['services'] if old else ()))

    def unregister(self, instance_id: str) -> bool:
        info = self.instances.pop(instance_id, None)
        self.expires.pop(instance_id, None)
        if info is not None:
            self._changed(info['services'])
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
        now = time.monotonic()
        gone = [self.instances[i] for i, t in self.expires.items() if t < now]
        for info in gone:
            self.unregister(info['id'])
        for service, watchers in list(self.watchers.items()):
            for peer in [p for p, t in watchers.items() if t < now]:
                del watchers[peer]
            if not watchers:
                del self.watchers[service]
        return gone

    # -- lookups and watches -----------------------------------------------------

    def lookup(self, service: str) -> list[dict[str, Any]]:
        return sorted((i for i in self.instances.values() if service in i['services']),
                      key=lambda i: i['started'])

    def snapshot(self, service: str) -> dict[str, Any]:
        return {'service': service, 'version': self.version(service), 'instances': self.lookup(service)}

    def services(self) -> dict[str, list[dict[str, Any]]]:
        names = sorted({s for i in self.instances.values() for s in i['services']})
        return {name: self.lookup(name) for name in names}

    def version(self, service: str) -> str:
        version = self.versions.get(service)
        if version is None:
            version = self.versions[service] = '%s.%d' % (self.epoch, next(self._counter))
        return version

    def watch(self, peer: bytes, services: list[str]) -> None:
        until = time.monotonic() + self.watch_ttl
        for service in services:
            self.watchers[service][peer] = until

    def sync(self, peer: bytes, versions: dict[str, str]) -> dict[str, Any]:
        """Renew `peer`'s watches; return snapshots of the services it has stale."""
        self.watch(peer, list(versions))
        return {s: self.snapshot(s) for s, v in versions.items() if v != self.version(s)}

    def _changed(self, services: set[str] | list[str]) -> None:
        for service in services:
            self.versions[service] = '%s.%d' % (self.epoch, next(self._counter))
            snapshot = None
            for peer in self.watchers.get(service, ()):
                snapshot = snapshot or self.snapshot(service)
                self.notify(peer, 'registry.changed', snapshot)
