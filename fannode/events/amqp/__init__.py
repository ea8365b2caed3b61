"""`amqp://user:pass@host:port/vhost`: events through RabbitMQ.

What it declares (every client declares all it uses; declaring is idempotent):

    fannode.events       topic exchange: every event, routing key = its type
    <Service>.<handler>  durable queue of a once-per-service handler, bound with its patterns
    <...>.<instance>, subscribe.<id>   exclusive auto-delete queues (broadcast, `fannode subscribe`)
    fannode.delay        headers exchange -> fannode.delay.<ms>: a fixed TTL, then dead-lettered
                         to fannode.events with the event's type as routing key
    fannode.retry        headers exchange -> fannode.retry.<ms>: a fixed TTL, then dead-lettered
                         to the default exchange, i.e. straight back to the queue it failed in
    fannode.dead         fanout exchange -> fannode.dead durable queue: dead letters

Threading: pika is not greenlet-safe. pika's GeventConnection does its I/O in callbacks on the
gevent hub, which only set events, count confirms and dispatch deliveries; every other pika
call is made by one owner greenlet. Other greenlets hand it work through the outbox (emits)
and a command queue (acks, retries, dead letters, consume, cancel).

The pieces: connection.py, the connection and its owner greenlet (connecting, reconnecting,
the command queue); publishing.py, the outbox, confirms and delay queues; consuming.py,
subscriptions and their deliveries. AmqpEvents puts them together.
"""
from __future__ import annotations

import logging
from typing import Any

import pika

from fannode.core.events import Event
from fannode.events.amqp.connection import Owner
from fannode.events.amqp.consuming import Consumer
from fannode.events.amqp.publishing import DEAD, DELAY, EXCHANGE, RETRY, Publisher, check_key, delay_ms
from fannode.events.base import EventSystem, Handler, Subscription
from fannode.exceptions import FannodeError, UsageError

__all__ = ['AmqpEvents', 'DEAD', 'DELAY', 'EXCHANGE', 'RETRY', 'delay_ms']

log = logging.getLogger(__name__)


class AmqpEvents(EventSystem):
    def __init__(self, url: str):
        super().__init__(url)
        try:
            params = pika.URLParameters(url)
        except ValueError as e:
            raise UsageError('bad RabbitMQ URL %r: %s' % (url, e)) from None
        self.owner = Owner(params, self)
        self.publisher = Publisher(self.owner)
        self.consumer = Consumer(self.owner, self.publisher)

    def check(self) -> None:
        self.owner.check()

    def emit(self, event: Event, delay: float | None = None) -> None:
        self.publisher.emit(event, delay)

    def flush(self, timeout: float) -> bool:
        return self.publisher.flush(timeout)

    def subscribe(self, queue: str, patterns: list[str], handler: Handler, *, retry: int = 0,
                  sequential: bool = False, durable: bool = True, exclusive: bool = False,
                  shard: str | None = None, member: str | None = None) -> Subscription:
        if shard:  # RabbitMQ has no key-ordered delivery to competing consumers without a plugin
            raise UsageError('%s: sharded event handlers (shard=%r) need the hub\'s broker; events here go to '
                             'RabbitMQ (amqp://), which cannot hand each key to one consumer in order' % (queue, shard))
        for pattern in patterns:
            if isinstance(pattern, str):  # Subscription checks the rest
                check_key('pattern', pattern)
        sub = Subscription(self, '', queue, list(patterns), handler, retry=retry,
                           sequential=sequential, durable=durable, exclusive=exclusive)
        self.consumer.subscribe(sub)
        return sub

    # Handlers decide from their own greenlets; the owner greenlet does it.
    def ack(self, consumer: str, tag: int) -> None:
        self.owner.command(self.consumer.ack, consumer, tag)

    def retry(self, consumer: str, tag: int, delay: float) -> None:
        self.owner.command(self.consumer.retry, consumer, tag, delay)

    def reject(self, consumer: str, tag: int, reason: str) -> None:
        self.owner.command(self.consumer.reject, consumer, tag, reason)

    def unsubscribe(self, sub: Subscription, timeout: float = 5.0) -> None:
        self.consumer.unsubscribe(sub, timeout)

    def close(self, timeout: float = 5.0) -> None:
        for sub in list(self.consumer.subs):
            self.unsubscribe(sub, timeout)
        if self.owner.greenlet is None:
            return
        if not self.flush(timeout):
            log.error('%d event(s) not sent to RabbitMQ at %s within %gs of stopping: they are lost',
                      self.unsent(), self.owner.where, timeout)
        self.owner.stop()

    def unsent(self) -> int:
        """Events emitted and not confirmed yet: what close() reports lost if it must stop."""
        return self.publisher.unsent()

    _unsent = unsent  # the name tests/integration/test_amqp_events.py reads it by

    # -- the owner greenlet's calls on each connection (connection.Session) ------------

    def opened(self) -> None:
        self.publisher.opened()
        self.consumer.opened()

    def turn(self) -> None:
        self.publisher.publish()

    def dropped(self) -> None:
        self.publisher.dropped()
        self.consumer.dropped()

    def down(self, error: FannodeError) -> None:
        self.consumer.fail_pending(error)

    def in_use(self, channel: Any) -> bool:
        return channel is self.publisher.channel or self.consumer.in_use(channel)
