"""`local://name`: an in-process broker, for tests of services without a hub. Every
backend with the same URL in one process shares one broker.

It keeps the promises hub:// and amqp:// keep (tests/contracts checks all three). Events
go through the wire codec both ways, as they do to and from a hub: encoded at emit (so a
body that cannot be sent is refused there, and later changes to it are not seen), decoded
afresh for each delivery (so a tuple arrives as a list, and no two deliveries, retries
included, share a body or headers). Dead letters are kept in memory, the latest
DEAD_KEPT of each URL, for tests to look at (`dead_letters()`).
"""
from __future__ import annotations

import collections
import logging
import time
import uuid
from typing import Any

import gevent

from fannode.core import serial
from fannode.core.events import Event
from fannode.core.limits import setting
from fannode.events.base import EventSystem, Handler, Subscription, prepare
from fannode.hub.broker import Broker, Consumer, Entry

log = logging.getLogger(__name__)

DEAD_KEPT = setting('FANNODE_LOCAL_DEAD_KEPT', 1000, low=0)

_brokers: dict[str, Broker] = {}
_subs: dict[str, Subscription] = {}


class DeadLetters:
    """The broker's journal, keeping only its dead letters (as the hub's keeps them)."""

    def __init__(self) -> None:
        self.kept: collections.deque[dict[str, Any]] = collections.deque(maxlen=DEAD_KEPT)

    def dead(self, queue: str, entry: Entry, reason: str) -> None:
        self.kept.append({'queue': queue, 'event': entry.event, 'attempts': entry.attempt, 'reason': reason})

    def queue_declared(self, name: str, patterns: list[str]) -> None: ...
    def queue_deleted(self, name: str) -> None: ...
    def stored(self, queue: str, entry: Entry) -> None: ...
    def removed(self, queue: str, tag: int) -> None: ...


def _deliver(consumer: Consumer, queue: str, tag: int, data: dict) -> None:
    sub = _subs.get(consumer.id)
    if sub is None:
        return
    try:
        copy = serial.loads(serial.dumps(data))
    except (TypeError, ValueError) as e:  # only a test publishing to the broker itself gets here
        copy = 'cannot be encoded: %s' % e
    sub.deliver(tag, copy, copy.get('attempt', 1) if isinstance(copy, dict) else 1)


class LocalEvents(EventSystem):
    def __init__(self, url: str):
        super().__init__(url)
        if url not in _brokers:
            _brokers[url] = Broker(_deliver, DeadLetters())
        self.broker = _brokers[url]
        self.subs: dict[str, Subscription] = {}
        self._ticker = gevent.spawn(self._tick)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Events dead-lettered on this URL, oldest first: `queue`, `event` (as it was
        published), `attempts`, `reason`."""
        journal = self.broker.journal
        return list(journal.kept) if isinstance(journal, DeadLetters) else []

    def emit(self, event: Event, delay: float | None = None) -> None:
        _, copy, delay = prepare(event, delay)
        self.broker.publish(copy, delay)

    def flush(self, timeout: float) -> bool:
        return True

    def subscribe(self, queue: str, patterns: list[str], handler: Handler, *, retry: int = 0,
                  sequential: bool = False, durable: bool = True, exclusive: bool = False,
                  shard: str | None = None, member: str | None = None) -> Subscription:
        sub = Subscription(self, uuid.uuid4().hex, queue, list(patterns), handler, retry=retry,
                           sequential=sequential, durable=durable, exclusive=exclusive, shard=shard,
                           member=member)
        self.subs[sub.consumer] = _subs[sub.consumer] = sub
        self.broker.declare(queue, sub.patterns, durable, sub.consumer if exclusive else None, shard)
        self.broker.consume(sub.consumer, None, queue, sub.prefetch, member)
        return sub

    def ack(self, consumer: str, tag: int) -> None:
        self.broker.ack(consumer, [tag])

    def retry(self, consumer: str, tag: int, delay: float) -> None:
        self.broker.retry(consumer, tag, delay)

    def reject(self, consumer: str, tag: int, reason: str) -> None:
        try:
            self.broker.reject(consumer, tag, reason)
        except Exception as e:  # the hub's broker, choking on a hostile event: never hold the queue
            log.error('could not dead-letter delivery %d (%s: %s); dropped it: %s', tag, type(e).__name__, e, reason)
            self.broker.ack(consumer, [tag])

    def unsubscribe(self, sub: Subscription, timeout: float = 5.0) -> None:
        self.subs.pop(sub.consumer, None)
        sub.stop(timeout)
        _subs.pop(sub.consumer, None)
        self.broker.cancel(sub.consumer)

    def close(self, timeout: float = 5.0) -> None:
        for sub in list(self.subs.values()):
            self.unsubscribe(sub, timeout)
        self._ticker.kill(block=False)

    def _tick(self) -> None:
        while True:  # delayed events and retries come due
            gevent.sleep(0.01)
            self.broker.release_due(time.monotonic())
