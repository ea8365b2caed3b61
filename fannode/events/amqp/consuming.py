"""Consuming: a channel per subscription (for its prefetch), deliveries handed to the
Subscription, and what its handlers decide: an ack, a retry (published to fannode.retry) or a
dead letter (to fannode.dead); those two ack the delivery only once RabbitMQ confirms them."""
from __future__ import annotations

import functools
import logging
import time
import uuid
from typing import Any

import gevent.event
import pika

from fannode.core import serial
from fannode.events.amqp.connection import Lost, Owner
from fannode.events.amqp.publishing import DEAD, EXCHANGE, RETRY, Out, Publisher, again
from fannode.events.base import Subscription
from fannode.events.encoding import attempt_of
from fannode.exceptions import FannodeError, RegistryUnavailable

log = logging.getLogger('fannode.events.amqp')  # the backend's one logger


class Consumer:
    def __init__(self, owner: Owner, publisher: Publisher):
        self.owner = owner
        self.publisher = publisher
        self.subs: list[Subscription] = []
        self.pending: dict[Subscription, gevent.event.AsyncResult] = {}  # subscribed, not consuming yet
        self.live: dict[str, tuple[Any, Subscription]] = {}  # consumer tag -> (channel, sub)
        # deliveries not acked yet: (consumer tag, delivery tag) -> (routing key, properties, body, attempt)
        self.held: dict[tuple[str, int], tuple[str, pika.BasicProperties, bytes, int]] = {}

    # -- called from the subscriber's greenlet -----------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        """Consume for `sub`; return once RabbitMQ says so, or raise why not."""
        started = self.pending[sub] = gevent.event.AsyncResult()
        self.subs.append(sub)
        self.owner.command(self.start, sub)
        started.wait(self.owner.patience)
        if not started.successful():
            self.pending.pop(sub, None)
            if sub in self.subs:
                self.subs.remove(sub)
            sub.stop(0)
            self.owner.commands.append((self.cancel, (sub.consumer,), None))  # in case it starts after all
            raise started.exception or RegistryUnavailable(
                'RabbitMQ at %s did not start consuming from %s in time' % (self.owner.where, sub.queue))

    def unsubscribe(self, sub: Subscription, timeout: float) -> None:
        if sub not in self.subs:
            return
        self.subs.remove(sub)  # deliveries from now on are left to go back to the queue
        self.pending.pop(sub, None)
        sub.stop(timeout)      # running handlers finish; their acks are queued before the cancel
        if self.owner.up.is_set():
            done = gevent.event.AsyncResult()
            self.owner.commands.append((self.cancel, (sub.consumer,), done))
            self.owner.kick()
            done.wait(timeout)

    # -- pika callbacks, on the hub: no pika calls here --------------------------------

    def _on_message(self, sub: Subscription, channel: Any, method: Any, props: pika.BasicProperties,
                    body: bytes) -> None:
        consumer, tag = method.consumer_tag, method.delivery_tag
        if consumer != sub.consumer or sub not in self.subs:
            return  # unsubscribing: it goes back to the queue when the channel closes
        # Anyone may publish to our exchange: properties, headers and body may be missing or
        # of any type. Subscription.deliver dead-letters what is not an event.
        headers = props.headers if isinstance(props.headers, dict) else {}
        raw_attempt = headers.get('attempt', 1)
        self.held[consumer, tag] = (method.routing_key, props, body, attempt_of(raw_attempt))
        try:
            data = serial.loads(body)
        except ValueError as e:
            sub.unreadable(tag, str(e))
            return
        sub.deliver(tag, data, raw_attempt)

    # -- the owner greenlet ------------------------------------------------------------

    def opened(self) -> None:
        """On a new connection: consume again for every subscription."""
        for sub in list(self.subs):
            self.start(sub)

    def start(self, sub: Subscription) -> None:
        """Consume for `sub` on this connection, on a channel of its own (its prefetch)."""
        if sub in self.subs and sub.consumer not in self.live:
            try:
                channel, closed = self.owner.channel()
                # RabbitMQ cancels a consumer whose queue goes (deleted by hand, say): start
                # over, which declares the queue again.
                channel.add_on_cancel_callback(lambda frame, lost=self.owner.lost: self.owner.on_lost(
                    lost, FannodeError('RabbitMQ cancelled consuming from %s' % sub.queue)))
                sync = functools.partial(self.owner.sync, closed=closed)
                sync(lambda cb: channel.basic_qos(prefetch_count=sub.prefetch, callback=cb))
                sync(lambda cb: channel.queue_declare(sub.queue, durable=sub.durable, exclusive=sub.exclusive,
                                                      auto_delete=sub.exclusive, callback=cb))
                for pattern in sub.patterns:
                    sync(lambda cb: channel.queue_bind(sub.queue, EXCHANGE, routing_key=pattern, callback=cb))
                # A new consumer id each time: acks for deliveries of a gone connection must
                # not reach this one (RabbitMQ delivers those again anyway).
                sub.consumer = uuid.uuid4().hex
                sync(lambda cb: channel.basic_consume(sub.queue, functools.partial(self._on_message, sub),
                                                      consumer_tag=sub.consumer, callback=cb))
            except Lost as e:
                if not e.refused:
                    raise
                error = FannodeError('RabbitMQ at %s refused queue %s: %s' % (self.owner.where, sub.queue, e))
                started = self.pending.pop(sub, None)
                if started is None:  # consuming again after a reconnection: keep trying
                    log.error('%s; trying again', error)
                    raise
                self.subs.remove(sub)  # a new subscription: its caller hears why
                started.set_exception(error)
                return
            self.live[sub.consumer] = (channel, sub)
        started = self.pending.pop(sub, None)
        if started is not None:
            started.set(None)

    def cancel(self, consumer: str) -> None:
        live = self.live.pop(consumer, None)
        for key in [k for k in self.held if k[0] == consumer]:
            del self.held[key]
        if live is not None and live[0].is_open:
            live[0].close()  # cancels; what it still holds unacked goes back to the queue

    def ack(self, consumer: str, tag: int) -> None:
        self.held.pop((consumer, tag), None)
        live = self.live.get(consumer)
        if live is not None and live[0].is_open:
            live[0].basic_ack(tag)

    def retry(self, consumer: str, tag: int, delay: float) -> None:
        held, live = self.held.pop((consumer, tag), None), self.live.get(consumer)
        if held is None or live is None:
            return  # from a connection gone since: RabbitMQ delivers it again
        _, props, body, attempt = held
        props = again(props, attempt=attempt + 1)
        then = functools.partial(self.ack, consumer, tag)
        self.publisher.put_first(Out('', live[1].queue, body, props, time.monotonic() + delay, RETRY, then))

    def reject(self, consumer: str, tag: int, reason: str) -> None:
        held, live = self.held.pop((consumer, tag), None), self.live.get(consumer)
        if held is None or live is None:
            return
        key, props, body, attempt = held
        event_type = props.type or key  # after a retry the routing key is the queue's name
        queue = live[1].queue
        then = functools.partial(self._dead, consumer, tag, props.message_id, event_type, queue, attempt,
                                 reason)
        props = again(props, queue=queue, reason=reason, attempt=attempt)
        self.publisher.put_first(Out(DEAD, event_type, body, props, None, None, then))

    def _dead(self, consumer: str, tag: int, event_id: str | None, event_type: str, queue: str,
              attempt: int, reason: str) -> None:
        self.ack(consumer, tag)
        log.error('dead-lettered event %s (%s) from queue %s after %d attempt(s): %s',
                  event_id or '?', event_type, queue, attempt, reason)

    def in_use(self, channel: Any) -> bool:
        return any(channel is c for c, _ in self.live.values())

    def dropped(self) -> None:
        """The connection is gone, and its deliveries with it: RabbitMQ delivers them again."""
        self.live.clear()
        self.held.clear()

    def fail_pending(self, error: FannodeError) -> None:
        """Not connected: subscriptions waiting to start fail, with `error`."""
        for sub, started in list(self.pending.items()):
            del self.pending[sub]
            if sub in self.subs:
                self.subs.remove(sub)
            started.set_exception(error)
