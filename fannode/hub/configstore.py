"""The hub's shared config: keys and values, watchers told of changes.

Watches work as the registry's do: versions `<epoch>.<n>` per key, NOTIFY `config.changed`
to watching peers, and watches that lapse unless renewed by `watch` (the clients' sync),
which also hands back whatever a client has stale: a missed notification, or everything
after a hub restart (new epoch).
"""
from __future__ import annotations

import collections
import itertools
import time
from typing import Any, Protocol

from fannode.hub.registry import WATCH_TTL, Notify
from fannode.core.keys import same


class Journal(Protocol):
    def config_set(self, key: str, value: Any) -> None: ...
    def config_deleted(self, key: str) -> None: ...
    def config_values(self) -> dict[str, Any]: ...


class ConfigState:
    def __init__(self, notify: Notify, epoch: str, journal: Journal | None = None,
                 watch_ttl: float = WATCH_TTL):
        self.notify = notify
        self.epoch = epoch
        self.journal = journal
        self.watch_ttl = watch_ttl
        self.values: dict[str, Any] = journal.config_values() if journal is not None else {}
        self.versions: dict[str, str] = {}
        self.watchers: dict[str, dict[bytes, float]] = collections.defaultdict(dict)
        self._counter = itertools.count(1)

    def snapshot(self, key: str) -> dict[str, Any]:
        return {'key': key, 'version': self.version(key), 'value': self.values.get(key)}

    def version(self, key: str) -> str:
        version = self.versions.get(key)
        if version is None:
            version = self.versions[key] = '%s.%d' % (self.epoch, next(self._counter))
        return version

    def set(self, key: str, value: Any) -> None:
        if key in self.values and same(self.values[key], value):
            return  # no change: no journal write, no notification
        self.values[key] = value
        if self.journal is not None:
            self.journal.config_set(key, value)
        self._changed(key)

    def delete(self, key: str) -> bool:
        if key not in self.values:
            return False
        del self.values[key]
        if self.journal is not None:
            self.journal.config_deleted(key)
        self._changed(key)
        return True

    def keys(self, prefix: str = '') -> list[str]:
        return sorted(k for k in self.values if k.startswith(prefix))

    def watch(self, peer: bytes, versions: dict[str, str]) -> dict[str, Any]:
        """Watch (or keep watching) the keys of `versions` for `peer`; return snapshots
        of those whose version differs ('' gets the current one)."""
        until = time.monotonic() + self.watch_ttl
        for key in versions:
            self.watchers[key][peer] = until
        return {k: self.snapshot(k) for k, v in versions.items() if v != self.version(k)}

    def expire(self) -> None:
        now = time.monotonic()
        for key, watchers in list(self.watchers.items()):
            for peer in [p for p, t in watchers.items() if t < now]:
                del watchers[peer]
            if not watchers:
                del self.watchers[key]

    def _changed(self, key: str) -> None:
        self.versions[key] = '%s.%d' % (self.epoch, next(self._counter))
        snapshot = self.snapshot(key)
        for peer in self.watchers.get(key, ()):
            self.notify(peer, 'config.changed', snapshot)
