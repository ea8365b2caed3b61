"""Which connections watch which names (services in the registry, keys of shared config),
until when, and the version of each name.

Versions are `<epoch>.<n>`: n orders them within one hub's life, and a restarted hub has a
new epoch, so no client mistakes its fresh state for the one it cached before. A name's
version is kept only while the name is in use or watched; any other name reads as the
latest number, newer than any it had. A watch lapses unless its client renews it (every
sync does) and costs bytes of its store's budget, so no client can make the hub keep
names for ever.
"""
from __future__ import annotations

import collections
import time

from fannode.hub.budget import Budget

WATCH_COST = 200  # bytes of one (name, connection) watch entry, besides the name and connection


class Watches:
    def __init__(self, budget: Budget, ttl: float, epoch: str):
        self.budget = budget
        self.ttl = ttl
        self.epoch = epoch
        self.n = 0  # the last version number handed out
        self.by_name: dict[str, dict[bytes, float]] = collections.defaultdict(dict)
        self.versions: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def peers(self, name: str) -> dict[bytes, float]:
        return self.by_name.get(name, {})

    def version(self, name: str) -> str:
        return self.versions.get(name) or '%s.%d' % (self.epoch, self.n)

    def changed(self, name: str) -> str:
        """A new version for `name`, which has just changed."""
        self.n += 1
        version = self.versions[name] = '%s.%d' % (self.epoch, self.n)
        return version

    def forget(self, name: str, in_use: bool) -> None:
        """Let `name`'s version go unless it is in use or watched: names asked about once
        are not kept for ever."""
        if not in_use and not self.peers(name):
            self.versions.pop(name, None)

    def renew(self, peer: bytes, names: list[str], verb: str, what: str) -> None:
        """Watch (or keep watching) `names` (of kind `what`: 'service(s)') for `peer`, each
        at a version that stays as it is while watched. New watches count against the
        budget and are all refused when they do not fit."""
        new = [n for n in set(names) if peer not in self.peers(n)]
        self.budget.claim(sum(WATCH_COST + len(n) + len(peer) for n in new),
                          '%s: cannot watch %d more %s: %%s' % (verb, len(new), what))
        until = time.monotonic() + self.ttl
        for name in names:
            self.by_name[name][peer] = until
            self.versions.setdefault(name, self.version(name))

    def expire(self, now: float) -> list[str]:
        """Drop the lapsed watches; the names nobody watches any more."""
        unwatched = []
        for name, peers in list(self.by_name.items()):
            for peer in [p for p, t in peers.items() if t < now]:
                del peers[peer]
                self.budget.give(WATCH_COST + len(name) + len(peer))
            if not peers:
                del self.by_name[name]
                unwatched.append(name)
        return unwatched
