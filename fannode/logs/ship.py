"""Sending records to a log hub: batched, never blocking the sender, bounded.

Used by instances run by hand (gevent) and by `fannode up`, which forwards what its
children write (asyncio): both pass their own `schedule(delay, func)`.

Records are made of plain types (core/logsetup.py), but whatever a batch holds, one record
that cannot be encoded is dropped and counted (the hub is told how many, as for records
dropped while it was away); it never stops the shipper or costs the rest of its batch.
"""
from __future__ import annotations

import collections
import itertools
import logging
from typing import Any, Callable

import zmq

from fannode.core import wire

INTERVAL = 0.05     # seconds a record may wait for others to share its message
BATCH = 500         # records per message
LIMIT = 20_000      # records kept while the hub is away; older ones are dropped, and counted
_ids = itertools.count(1)
log = logging.getLogger(__name__)


class Shipper:
    def __init__(self, endpoint: str, schedule: Callable[[float, Callable[[], Any]], Any],
                 context: zmq.Context | None = None, limit: int = LIMIT):
        self.endpoint = endpoint
        self.schedule = schedule
        self.limit = limit
        self.pending: collections.deque[dict[str, Any]] = collections.deque()
        self.dropped = 0    # not sent yet: the hub is told with the next batch
        self.unsendable = 0  # of them, records the codec could not carry
        self.sent = 0
        self._scheduled = False
        self._timer: Any = None
        self._note: Any = None
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
            frame, count = self._frame()
            try:
                self.socket.send(frame, zmq.NOBLOCK)
            except zmq.Again:  # the hub is away or slow: keep them, try again soon
                self._scheduled = True
                self._timer = self.schedule(INTERVAL * 4, self.flush)
                return False
            for _ in range(count):
                self.pending.popleft()
            self.sent += count
            self.dropped = 0
        return True

    def _frame(self) -> tuple[bytes, int]:
        """The message for as many of the first records as encode together, and how many
        it holds. A batch that fails is halved until the record at fault is alone; that
        one is dropped (and counted). Halving also brings a batch too big for one message
        under the limit."""
        count = min(BATCH, len(self.pending))
        while True:
            batch = [self.pending[i] for i in range(count)]
            msg = wire.Message(wire.REQ, next(_ids), 'hub.logs', {'records': batch, 'dropped': self.dropped},
                               headers={'oneway': 1})
            try:
                return msg.encode(), count
            except (TypeError, ValueError, OverflowError) as e:
                if count > 1:
                    count //= 2
                    continue
                self.pending.popleft()
                self.dropped += 1
                self.unsendable += 1
                if self.unsendable == 1:  # once: each one is counted in `dropped` at the hub
                    # Logged later: a record logged now would join `pending` while it is cut.
                    problem = '%s: %s' % (type(e).__name__, e)

                    def tell() -> None:
                        log.error('a log record could not be encoded (%s); dropped it, and any more such '
                                  'are counted in the records dropped', problem)
                    self._note = self.schedule(0, tell)
                count = min(BATCH, len(self.pending))

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
