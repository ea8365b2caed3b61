"""`local://name`: an in-process broker, for tests of services without a hub. Every
backend with the same URL in one process shares one broker.

It keeps the promises hub:// and amqp:// keep (tests/contracts checks all three). Events
go through the wire codec both ways, as they do to and from a hub: encoded at emit (so a
body that cannot be sent is refused there, and later changes to it are not seen), decoded
afresh for each delivery (so a tuple arrives as a list, and no two deliveries, retries
included, share a body or headers).
"""
from __future__ import annotations

import time
import uuid
from typing import Any

import gevent

from fannode.core import serial
from fannode.core.events import Event, check_pattern
from fannode.events.base import EventSystem, Handler, Subscription
from fannode.hub.broker import Broker, Consumer

_brokers: dict[str, Broker] = {}
_subs: dict[str, Subscription] = {}


def _copy(data: Any) -> Any:
    return serial.loads(serial.dumps(data))


def _deliver(consumer: Consumer, queue: str, tag: int, data: dict) -> None:
    sub = _subs.get(consumer.id)
    if sub is not None:
        event = Event.from_dict(_copy(data))
        event.headers['attempt'] = data.get('attempt', 1)
        sub.dispatch(tag, event)


class LocalEvents(EventSystem):
    def __init__(self, url: str):
        super().__init__(url)
        self.broker = _brokers.setdefault(url, Broker(_deliver))
        self.subs: dict[str, Subscription] = {}
        self._ticker = gevent.spawn(self._tick)

    def emit(self, event: Event, delay: float | None = None) -> None:
        self.broker.publish(_copy(event.to_dict()), delay or 0.0)

    def flush(self, timeout: float) -> bool:
        return True

    def subscribe(self, queue: str, patterns: list[str], handler: Handler, *, retry: int = 0,
                  sequential: bool = False, durable: bool = True, exclusive: bool = False) -> Subscription:
        for pattern in patterns:  # the hub refuses a bad pattern too
            check_pattern(pattern)
        sub = Subscription(self, uuid.uuid4().hex, queue, list(patterns), handler, retry=retry,
                           sequential=sequential, durable=durable, exclusive=exclusive)
        self.subs[sub.consumer] = _subs[sub.consumer] = sub
        self.broker.declare(queue, sub.patterns, durable, sub.consumer if exclusive else None)
        self.broker.consume(sub.consumer, None, queue, sub.prefetch)
        return sub

    def ack(self, consumer: str, tag: int) -> None:
        self.broker.ack(consumer, [tag])

    def retry(self, consumer: str, tag: int, delay: float) -> None:
        self.broker.retry(consumer, tag, delay)

    def reject(self, consumer: str, tag: int, reason: str) -> None:
        self.broker.reject(consumer, tag, reason)

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
