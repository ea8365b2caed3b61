"""The hub's shared config: keys and values, watchers told of changes.

Watches work as the registry's do (fannode.hub.watches): versions `<epoch>.<n>` per key,
NOTIFY `config.changed` to watching peers, and watches that lapse unless renewed by `watch` (the clients' sync),
which also hands back whatever a client has stale: a missed notification, or everything
after a hub restart (new epoch).
"""
from __future__ import annotations

import time
from typing import Any, Protocol

from fannode.core.keys import same
from fannode.core.limits import MIB, setting
from fannode.hub.budget import Budget, footprint
from fannode.hub.registry import WATCH_TTL, Notify
from fannode.hub.watches import Watches

# Keys, values and watches kept, in bytes; over it a set that grows it is refused.
BUDGET = setting('FANNODE_HUB_CONFIG_BUDGET', 32 * MIB, MIB)
MAX_VALUE = setting('FANNODE_HUB_MAX_CONFIG_VALUE', 1 * MIB, 1024)  # one value, in memory
KEY_COST = 150   # bytes of a key's entries besides its name and value


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
        self.values: dict[str, Any] = journal.config_values() if journal is not None else {}
        self.budget = Budget('shared config', BUDGET, 'FANNODE_HUB_CONFIG_BUDGET')
        self.watchers = Watches(self.budget, watch_ttl, epoch)
        self.sizes = {key: self._size(key, value) for key, value in self.values.items()}
        self.budget.take(sum(self.sizes.values()))  # what the journal had, even over the budget

    def snapshot(self, key: str) -> dict[str, Any]:
        return {'key': key, 'version': self.version(key), 'value': self.values.get(key)}

    def version(self, key: str) -> str:
        return self.watchers.version(key)

    @staticmethod
    def _size(key: str, value: Any) -> int:
        return KEY_COST + len(key) + footprint(value)

    def set(self, key: str, value: Any) -> None:
        if key in self.values and same(self.values[key], value):
            return  # no change: no journal write, no notification
        size = self._size(key, value)
        self.budget.claim(size - self.sizes.get(key, 0), 'hub.config_set: %s; delete keys first')
        self.sizes[key] = size
        self.values[key] = value
        if self.journal is not None:
            self.journal.config_set(key, value)
        self._changed(key)

    def delete(self, key: str) -> bool:
        if key not in self.values:
            return False
        del self.values[key]
        self.budget.give(self.sizes.pop(key, 0))
        if self.journal is not None:
            self.journal.config_deleted(key)
        self._changed(key)
        return True

    def keys(self, prefix: str = '') -> list[str]:
        return sorted(k for k in self.values if k.startswith(prefix))

    def watch(self, peer: bytes, versions: dict[str, str]) -> dict[str, Any]:
        """Watch (or keep watching) the keys of `versions` for `peer`; return snapshots
        of those whose version differs ('' gets the current one)."""
        self.watchers.renew(peer, list(versions), 'hub.config_watch', 'key(s)')
        return {k: self.snapshot(k) for k, v in versions.items() if v != self.version(k)}

    def expire(self) -> None:
        now = time.monotonic()
        for key in self.watchers.expire(now):
            self.watchers.forget(key, key in self.values)
        self.budget.report(now)

    def _changed(self, key: str) -> None:
        self.watchers.changed(key)
        snapshot = self.snapshot(key)
        for peer in self.watchers.peers(key):
            self.notify(peer, 'config.changed', snapshot)
        self.watchers.forget(key, key in self.values)
