"""Sending records to a log hub: batched, never blocking the sender, bounded.

Used by instances run by hand (gevent) and by `fannode up`, which forwards what its
children write (asyncio): both pass their own `schedule(delay, func)`.
"""
from __future__ import annotations

import collections
import itertools
from typing import Any, Callable

import zmq

from fannode.core import wire

INTERVAL = 0.05     # seconds a record may wait for others to share its message
BATCH = 500         # records per message
LIMIT = 20_000      # records kept while the hub is away; older ones are dropped, and counted
_ids = itertools.count(1)


class Shipper:
    def __init__(self, endpoint: str, schedule: Callable[[float, Callable[[], Any]], Any],
                 context: zmq.Context | None = None, limit: int = LIMIT):
        self.endpoint = endpoint
        self.schedule = schedule
        self.limit = limit
        self.pending: collections.deque[dict[str, Any]] = collections.deque()
        self.dropped = 0
        self.sent = 0
        self._scheduled = False
        self._timer: Any = None
        context = context or zmq.Context.instance()
        self.socket = context.socket(zmq.DEALER, socket_class=zmq.Socket)
        self.socket.setsockopt(zmq.LINGER, 1000)
        self.socket.setsockopt(zmq.SNDHWM, 200)  # messages; the rest waits in `pending`
        # Always copy: above the threshold pyzmq sends without a copy and frees the buffer
        # through its garbage-collector thread, which costs far more under gevent.
        self.socket.copy_threshold = 1 << 30
        self.socket.connect(endpoint)

    def add(self, record: dict[str, Any]) -> None:
        if len(self.pending) >= self.limit:
            self.pending.popleft()
            self.dropped += 1
        self.pending.append(record)
        if not self._scheduled:
            self._scheduled = True
            self._timer = self.schedule(INTERVAL, self.flush)  # kept: a timer must outlive its wait

    def flush(self) -> bool:
        """Send what waits; True when all went (else it tries again later)."""
        self._scheduled = False
        while self.pending or self.dropped:
            count = min(BATCH, len(self.pending))
            batch = [self.pending[i] for i in range(count)]
            msg = wire.Message(wire.REQ, next(_ids), 'hub.logs',
                                   {'records': batch, 'dropped': self.dropped}, headers={'oneway': 1})
            try:
                self.socket.send(msg.encode(), zmq.NOBLOCK)
            except zmq.Again:  # the hub is away or slow: keep them, try again soon
                self._scheduled = True
                self._timer = self.schedule(INTERVAL * 4, self.flush)
                return False
            for _ in range(count):
                self.pending.popleft()
            self.sent += count
            self.dropped = 0
        return True

    def close(self) -> None:
        self.flush()
        self.socket.close()


def gevent_schedule(delay: float, func: Callable[[], Any]) -> Any:
    import gevent
    timer = gevent.get_hub().loop.timer(delay)
    timer.start(func)
    return timer


def instance_shipper(registry_url: str) -> Shipper | None:
    """Where an instance run by hand sends its records: $FANNODE_LOGS (a hub:// URL), or
    the hub it registers with. None on other registries: only `fannode up` runs a log hub
    there (and reads its children's records from their stderr)."""
    import os

    from fannode.hub.client import hub_endpoint
    url = os.environ.get('FANNODE_LOGS') or (registry_url if registry_url.startswith('hub://') else '')
    return Shipper(hub_endpoint(url), gevent_schedule) if url else None
