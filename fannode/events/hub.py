"""`hub://host:port`: events through the embedded hub's broker.

Emits are batched and sent by one greenlet, retried until the hub confirms them, so an
emit never blocks a handler and is not lost while the hub restarts. Acks are batched
the same way. Deliveries arrive as NOTIFY messages on the same connection.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

import gevent
import gevent.event
import zmq.green as zmq

from fannode.core.events import Event
from fannode.events.base import EventSystem, Handler, Subscription
from fannode.exceptions import RegistryUnavailable
from fannode.core import wire
from fannode.hub.client import HubLink

log = logging.getLogger(__name__)

ALIVE_EVERY = 0.5   # consumers' lease on the hub is 2 s
BATCH = 500


class HubEvents(EventSystem):
    def __init__(self, url: str, context: zmq.Context | None = None):
        super().__init__(url)
        self.link = HubLink(url, self._on_notify, context)
        self.outbox: list[dict[str, Any]] = []
        self.acks: dict[str, list[int]] = {}
        self.subs: dict[str, Subscription] = {}
        self._wake = gevent.event.Event()
        self._idle = gevent.event.Event()
        self._idle.set()
        self._sender: gevent.Greenlet | None = None

    def check(self) -> None:
        try:
            self.link.call('ping')
        except RegistryUnavailable:
            raise RegistryUnavailable(
                'cannot reach the event broker at %s: start one with `fannode hub` or `fannode up`, '
                'or point --events / $FANNODE_EVENTS at a running one' % self.url) from None

    # -- emitting ----------------------------------------------------------------

    def emit(self, event: Event, delay: float | None = None) -> None:
        self.outbox.append({'event': event.to_dict(), 'delay': delay or 0.0})
        self._kick()

    def flush(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()
        if self._sender is None or self._sender.dead:
            self._sender = gevent.spawn(self._send_loop)

    def _send_loop(self) -> None:
        delay = 0.05
        while True:
            self._wake.wait()
            self._wake.clear()
            while self.outbox or any(self.acks.values()):
                if self.link.guarded(self._send_batch):
                    delay = 0.05
                else:
                    gevent.sleep(delay)  # the hub is away: keep everything, try again
                    delay = min(delay * 2, 1.0)
            self._idle.set()

    def _send_batch(self) -> None:
        acks = {c: list(tags) for c, tags in self.acks.items() if tags}  # a copy: more arrive while we send
        for consumer, tags in acks.items():
            self.link.call('ack', consumer=consumer, tags=tags)
            del self.acks[consumer][:len(tags)]
        batch = self.outbox[:BATCH]
        if batch:
            self.link.call('publish', events=batch)
            del self.outbox[:len(batch)]

    # -- consuming ---------------------------------------------------------------

    def subscribe(self, queue: str, patterns: list[str], handler: Handler, *, retry: int = 0,
                  sequential: bool = False, durable: bool = True, exclusive: bool = False) -> Subscription:
        sub = Subscription(self, uuid.uuid4().hex, queue, list(patterns), handler, retry=retry,
                           sequential=sequential, durable=durable, exclusive=exclusive)
        self.subs[sub.consumer] = sub  # before consuming: deliveries may arrive before the reply
        try:
            self._consume(sub)
        except BaseException:
            del self.subs[sub.consumer]
            raise
        self.link.start(self._alive_loop)
        return sub

    def _consume(self, sub: Subscription) -> None:
        self.link.call('declare', queue=sub.queue, patterns=sub.patterns, durable=sub.durable,
                       owner=sub.consumer if sub.exclusive else None)
        self.link.call('consume', consumer=sub.consumer, queue=sub.queue, prefetch=sub.prefetch)

    def ack(self, consumer: str, tag: int) -> None:
        self.acks.setdefault(consumer, []).append(tag)
        self._kick()

    def retry(self, consumer: str, tag: int, delay: float) -> None:
        self._tell('retry', consumer=consumer, tag=tag, delay=delay)

    def reject(self, consumer: str, tag: int, reason: str) -> None:
        self._tell('reject', consumer=consumer, tag=tag, reason=reason)

    def _tell(self, method: str, **body: Any) -> None:
        # If the hub is away the consumer's lease runs out and the event comes back anyway.
        try:
            self.link.call(method, **body)
        except RegistryUnavailable as e:
            log.warning('could not %s an event: %s', method, e)

    def unsubscribe(self, sub: Subscription, timeout: float = 5.0) -> None:
        self.subs.pop(sub.consumer, None)
        sub.stop(timeout)
        self.flush(timeout)  # the acks of what just finished
        self._tell('cancel', consumer=sub.consumer)

    def close(self, timeout: float = 5.0) -> None:
        for sub in list(self.subs.values()):
            self.unsubscribe(sub, timeout)
        if not self.flush(timeout):
            log.warning('%d event(s) not sent to the hub at %s before stopping', len(self.outbox), self.url)
        self.link.close()

    def _on_notify(self, msg: wire.Message) -> None:
        if msg.subject != 'event':
            return
        sub = self.subs.get(msg.body['consumer'])
        if sub is None:
            return  # cancelled; the hub gives it to someone else
        data = msg.body['event']
        event = Event.from_dict(data)
        event.headers['attempt'] = data.get('attempt', 1)
        sub.dispatch(msg.body['tag'], event)

    def _alive_loop(self) -> None:
        while True:
            gevent.sleep(ALIVE_EVERY)
            if self.subs:
                self.link.guarded(self._alive)

    def _alive(self) -> None:
        reply = self.link.call('alive', consumers=list(self.subs))
        for consumer in reply['unknown']:  # the hub restarted or gave up on us
            sub = self.subs.pop(consumer, None)
            if sub is not None:
                log.info('consuming %s again from the hub at %s', sub.queue, self.url)
                self.acks.pop(consumer, None)  # those deliveries will come again
                sub.consumer = uuid.uuid4().hex
                self.subs[sub.consumer] = sub
                self._consume(sub)
