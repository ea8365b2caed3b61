"""Which connections watch which names (services in the registry, keys of shared config),
and until when: a watch lapses unless its client renews it (every sync does), and each
costs bytes of its store's budget, so no client can make the hub keep names for ever."""
from __future__ import annotations

import collections
import time

from fannode.exceptions import Unavailable
from fannode.hub.budget import Budget

WATCH_COST = 200  # bytes of one (name, connection) watch entry, besides the name and connection


class Watches:
    def __init__(self, budget: Budget, ttl: float):
        self.budget = budget
        self.ttl = ttl
        self.by_name: dict[str, dict[bytes, float]] = collections.defaultdict(dict)

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def peers(self, name: str) -> dict[bytes, float]:
        return self.by_name.get(name, {})

    def renew(self, peer: bytes, names: list[str], refusal: str) -> None:
        """Watch (or keep watching) `names` for `peer`. New watches count against the
        budget and are all refused (`refusal % (how many, why)`) when they do not fit."""
        new = [n for n in set(names) if peer not in self.peers(n)]
        cost = sum(WATCH_COST + len(n) + len(peer) for n in new)
        if cost and not self.budget.fits(cost):
            self.budget.refused += 1
            raise Unavailable(refusal % (len(new), self.budget.full()))
        self.budget.take(cost)
        until = time.monotonic() + self.ttl
        for name in names:
            self.by_name[name][peer] = until

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
