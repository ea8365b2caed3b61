"""The hub's id counters: one per name, each handing out blocks of fresh ids.

With a journal, a counter moves on disk before the caller hears of its block (the hub
commits after each request), so a restarted hub never hands a block out again. Without
one, nothing survives a restart: a name's first block then starts at the hub's start time
in microseconds, above anything a hub that ran before it handed out unless that one drew
more than a million ids a second on average.
"""
from __future__ import annotations

import time
from typing import Protocol

from fannode.core.limits import setting
from fannode.exceptions import Unavailable

MAX_NAMES = setting('FANNODE_HUB_MAX_ID_NAMES', 10_000, 1)  # counters kept: each is one row for good
MAX_BLOCK = 1_000_000  # ids in one block


class Journal(Protocol):
    def ids_reserved(self, name: str, following: int) -> None: ...
    def id_counters(self) -> dict[str, int]: ...


class IdCounters:
    def __init__(self, journal: Journal | None = None):
        self.journal = journal
        self.following: dict[str, int] = journal.id_counters() if journal is not None else {}
        self.floor = 1 if journal is not None else int(time.time() * 1_000_000)

    def reserve(self, name: str, count: int) -> int:
        """The first of `count` ids of `name` nobody had before."""
        if name not in self.following and len(self.following) >= MAX_NAMES:
            raise Unavailable('hub.ids: the hub keeps %d id names ($FANNODE_HUB_MAX_ID_NAMES); '
                              'no new one' % MAX_NAMES)
        first = max(self.following.get(name, 1), self.floor)
        self.following[name] = first + count
        if self.journal is not None:
            self.journal.ids_reserved(name, first + count)
        return first
