"""`local://name`: an in-process broker, for tests of services without a hub. Every
backend with the same URL in one process shares one broker."""
from __future__ import annotations

import time
import uuid

import gevent

from fannode.core.events import Event
from fannode.events.base import EventSystem, Handler, Subscription
from fannode.hub.broker import Broker, Consumer

_brokers: dict[str, Broker] = {}
_subs: dict[str, Subscription] = {}


def _deliver(consumer: Consumer, queue: str, tag: int, data: dict) -> None:
    sub = _subs.get(consumer.id)
    if sub is not None:
        event = Event.from_dict(data)
        event.headers['attempt'] = data.get('attempt', 1)
        sub.dispatch(tag, event)


class LocalEvents(EventSystem):
    def __init__(self, url: str):
        super().__init__(url)
        self.broker = _brokers.setdefault(url, Broker(_deliver))
        self.subs: dict[str, Subscription] = {}
        self._ticker = gevent.spawn(self._tick)

    def emit(self, event: Event, delay: float | None = None) -> None:
        self.broker.publish(event.to_dict(), delay or 0.0)

    def flush(self, timeout: float) -> bool:
        return True

    def subscribe(self, queue: str, patterns: list[str], handler: Handler, *, retry: int = 0,
                  sequential: bool = False, durable: bool = True, exclusive: bool = False) -> Subscription:
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
