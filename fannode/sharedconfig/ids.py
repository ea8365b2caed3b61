"""Cluster-wide unique ids: per name, unique across the cluster and increasing for each
caller. The backend hands out blocks (the hub from its journal, ZooKeeper from sequential
znodes); ids are drawn from the block in hand, so the common call is local.

A block is never handed out twice, even when its reply is lost or the backend restarts, so
a block reserved and never used is skipped, never reused: ids have gaps, not duplicates.

The blocks in hand are the process's, per registry URL, whichever client draws: an
instance's `self.unique_id` and `fannode.unique_id` in the same process go on from one
another, so the ids a process draws of a name only go up.
"""
from __future__ import annotations

import time
from typing import Callable

import gevent
from gevent.lock import Semaphore

from fannode.core.keys import KEY, MAX_KEY
from fannode.core.limits import setting
from fannode.exceptions import RegistryUnavailable, UsageError

# Ids reserved per trip to the backend: larger means fewer trips, and larger gaps when a
# process stops with part of its block unused.
BATCH = setting('FANNODE_ID_BATCH', 100, 1)
# How long a caller waits out an absent backend (a hub or ZooKeeper restarting) before failing.
WAIT = setting('FANNODE_ID_WAIT', 10.0, 0.0)

Reserve = Callable[[str, int], tuple[int, int]]  # (name, wanted) → (first, count)

_blocks: dict[tuple[str, str], tuple[int, int]] = {}  # (url, name) → (next id, end of block)
_locks: dict[tuple[str, str], Semaphore] = {}


def check_name(name: object) -> str:
    if not isinstance(name, str) or len(name) > MAX_KEY or not KEY.match(name):
        raise UsageError('bad id name %r: expected dotted words of letters, digits, _ and - '
                         '(e.g. orders), at most %d characters' % (name, MAX_KEY))
    return name


def forget(url: str) -> None:
    """Drop the blocks in hand for `url` (its store was wiped: local:// after its last client)."""
    for key in [k for k in _blocks if k[0] == url]:
        del _blocks[key]


class IdBlocks:
    def __init__(self, url: str, reserve: Reserve, batch: int = BATCH, wait: float = WAIT):
        self.url = url
        self.reserve = reserve
        self.batch = batch
        self.wait = wait

    def next(self, name: str) -> int:
        """The next id of `name`: from the block in hand, or a new block when it is used up."""
        key = (self.url, check_name(name))
        following, end = _blocks.get(key, (0, 0))
        if following >= end:
            with _locks.setdefault(key, Semaphore()):  # one trip, however many wait
                following, end = _blocks.get(key, (0, 0))
                if following >= end:
                    following, count = self._fetch(name)
                    end = following + count
        _blocks[key] = (following + 1, end)
        return following

    def _fetch(self, name: str) -> tuple[int, int]:
        deadline = time.monotonic() + self.wait
        delay = 0.05
        while True:
            try:
                first, count = self.reserve(name, self.batch)
            except RegistryUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                gevent.sleep(delay)  # the backend is restarting: what it handed out is kept
                delay = min(delay * 2, 1.0)
                continue
            if count < 1:
                raise RegistryUnavailable('the registry handed out an empty block of %s ids' % name)
            return first, count
