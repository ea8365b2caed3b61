"""Logging bad frames without letting a peer flood the log: a peer that sends garbage in
a loop, or reconnects to send it as a new peer each time, must not fill the disk."""
from __future__ import annotations

import collections
import logging
import time
from typing import Hashable

from fannode.core.limits import setting

# Peers whose bad frames were logged, remembered so that each is logged once.
LOGGED_PEERS = setting('FANNODE_LOGGED_PEERS', 1024, 1)
WARN_EVERY = 1.0  # seconds between two warnings of bad frames, whoever sent them


class BadFrames:
    """Warns of bad frames without letting a peer flood the log: the first from each peer
    (of the last LOGGED_PEERS), at most one warning every WARN_EVERY seconds, the rest
    counted in the next warning."""

    def __init__(self, logger: logging.Logger, what: str):
        self.log = logger
        self.what = what
        self.peers: collections.OrderedDict[Hashable, None] = collections.OrderedDict()
        self.unlogged = 0
        self.last = -WARN_EVERY

    def warn(self, peer: Hashable, name: str, reason: str) -> None:
        now = time.monotonic()
        if peer in self.peers or now - self.last < WARN_EVERY:
            self.unlogged += 1
            return
        self.last = now
        self.peers[peer] = None
        if len(self.peers) > LOGGED_PEERS:
            self.peers.popitem(last=False)
        more = ' (and %d more not logged since the last warning)' % self.unlogged if self.unlogged else ''
        self.unlogged = 0
        self.log.warning('%s from %s: %s; more from there are not logged%s', self.what, name, reason, more)

