"""`hub://host:port`: events through the embedded hub's broker.

Emits are encoded at once (an event that cannot be sent raises in the emitter), then
batched and sent by one greenlet, retried until the hub confirms them, so an emit never
blocks a handler and is not lost while the hub restarts. Acks, retries and dead letters
are sent by the same greenlet. One item the hub refuses (BadArguments) is dropped, logged
and counted; it never holds up the rest. Deliveries arrive as NOTIFY messages on the
same connection.
"""
from __future__ import annotations

import collections
import logging
import uuid
from typing import Any

import gevent
import gevent.event
import zmq.green as zmq

from fannode.core import trace, wire
from fannode.core.events import Event
from fannode.core.limits import MIB, setting
from fannode.events.base import EventSystem, Handler, Subscription, describe, prepare
from fannode.exceptions import BadArguments, RegistryUnavailable, RemoteError, UnknownMethod
from fannode.hub.client import HubLink, HubRefused

log = logging.getLogger(__name__)

ALIVE_EVERY = 0.5   # consumers' lease on the hub is 2 s
BATCH = 500         # events per hub.publish
# Bytes of events per hub.publish (at least one event): a batch is one message to the hub.
BATCH_BYTES = setting('FANNODE_EVENT_BATCH_BYTES', 1 * MIB, low=1024)


def refused(error: RegistryUnavailable) -> bool:
    """Whether the hub answered that the request itself is wrong (sending it again would
    not help), rather than being away, full or failing."""
    return isinstance(error, HubRefused) and isinstance(error.answer, (BadArguments, UnknownMethod))


class HubEvents(EventSystem):
    def __init__(self, url: str, context: zmq.Context | None = None):
        super().__init__(url)
        self.link = HubLink(url, self._on_notify, context)
        self.outbox: collections.deque[tuple[dict[str, Any], int]] = collections.deque()  # (entry, bytes)
        self.acks: dict[str, list[int]] = {}
        self.verdicts: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()  # retries, rejects
        self.subs: dict[str, Subscription] = {}
        self.dropped = 0  # events the hub refused
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

    # -- sending -----------------------------------------------------------------

    def emit(self, event: Event, delay: float | None = None) -> None:
        raw, copy, seconds = prepare(event, delay)
        self.outbox.append(({'event': copy, 'delay': seconds}, len(raw)))
        self._kick()

    def flush(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()
        if self._sender is None or self._sender.dead:
            self._sender = trace.background(self._send_loop)

    def _pending(self) -> bool:
        return bool(self.outbox or self.verdicts or any(self.acks.values()))

    def _send_loop(self) -> None:
        delay = 0.05
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending():
                if self.link.guarded(self._send_batch):
                    delay = 0.05
                else:
                    gevent.sleep(delay)  # the hub is away: keep everything, try again
                    delay = min(delay * 2, 1.0)
            self._idle.set()

    def _send_batch(self) -> None:
        acks = {c: list(tags) for c, tags in self.acks.items() if tags}  # a copy: more arrive while we send
        for consumer, tags in acks.items():
            problem = self._call('ack', consumer=consumer, tags=tags)
            if problem:  # they come again: at least once
                log.warning('the hub at %s refused %d ack(s): %s', self.url, len(tags), problem)
            del self.acks[consumer][:len(tags)]
        while self.verdicts:
            method, body = self.verdicts[0]
            # A hub that fails on this event (one a hostile emitter made, say) must not
            # block this loop: a retry becomes a dead letter, a dead letter an ack, logged.
            problem = self._call(method, failure_too=True, **body)
            if problem:
                queue = getattr(self.subs.get(body['consumer']), 'queue', '?')
                log.error('the hub at %s did not take the %s of a delivery from queue %s (%s); %s it instead',
                          self.url, method, queue, problem, 'dead-lettering' if method == 'retry' else 'acking')
                if method == 'retry':
                    self.verdicts.append(('reject', {'consumer': body['consumer'], 'tag': body['tag'],
                                                     'reason': 'the hub could not retry it: %s' % problem}))
                else:
                    self.acks.setdefault(body['consumer'], []).append(body['tag'])
            self.verdicts.popleft()
        batch: list[dict[str, Any]] = []
        size = 0
        for entry, length in self.outbox:
            if len(batch) == BATCH or (batch and size + length > BATCH_BYTES):
                break
            batch.append(entry)
            size += length
        if not batch:
            return
        if len(batch) > 1 and not self._call('publish', events=batch):
            for _ in batch:
                self.outbox.popleft()
            return
        for entry in batch:  # one at a time: only the one the hub refuses is dropped
            problem = self._call('publish', events=[entry])
            if problem:
                self.dropped += 1
                log.error('the hub at %s refused event %s (%s): %s; dropped it (%d so far)', self.url,
                          entry['event']['headers'].get('id', '?'), entry['event']['type'], problem, self.dropped)
            self.outbox.popleft()

    def _call(self, method: str, failure_too: bool = False, **body: Any) -> str:
        """'' once the hub took it; why not when it refused it (with `failure_too`, also
        when it failed on it), or it could not be sent at all. RegistryUnavailable while
        the hub is away (or failing): try again later."""
        try:
            self.link.call(method, **body)
        except RegistryUnavailable as e:
            failed = isinstance(e, HubRefused) and isinstance(e.answer, RemoteError)
            if not (refused(e) or failure_too and failed):
                raise
            return str(e.answer) if isinstance(e, HubRefused) else str(e)
        except Exception as e:  # cannot even be encoded: sending it again would not help
            return describe(e)
        return ''

    # -- consuming ---------------------------------------------------------------

    def subscribe(self, queue: str, patterns: list[str], handler: Handler, *, retry: int = 0,
                  sequential: bool = False, durable: bool = True, exclusive: bool = False,
                  shard: str | None = None, member: str | None = None) -> Subscription:
        sub = Subscription(self, uuid.uuid4().hex, queue, list(patterns), handler, retry=retry,
                           sequential=sequential, durable=durable, exclusive=exclusive, shard=shard,
                           member=member)
        self.subs[sub.consumer] = sub  # before consuming: deliveries may arrive before the reply
        try:
            self._consume(sub)
        except BaseException:
            del self.subs[sub.consumer]
            raise
        self.link.start(self._alive_loop)
        return sub

    def _consume(self, sub: Subscription) -> None:
        # Sent only when set: a hub from before sharding refuses arguments it does not know.
        sharded: dict[str, Any] = {'shard': sub.shard} if sub.shard else {}
        member: dict[str, Any] = {'member': sub.member} if sub.shard and sub.member else {}
        self.link.call('declare', queue=sub.queue, patterns=sub.patterns, durable=sub.durable,
                       owner=sub.consumer if sub.exclusive else None, **sharded)
        self.link.call('consume', consumer=sub.consumer, queue=sub.queue, prefetch=sub.prefetch, **member)

    def ack(self, consumer: str, tag: int) -> None:
        self.acks.setdefault(consumer, []).append(tag)
        self._kick()

    # Sent in order by the send loop, and again after an outage: a retry or dead letter
    # lost on the way would leave its event held by a consumer that is still alive.
    def retry(self, consumer: str, tag: int, delay: float) -> None:
        self.verdicts.append(('retry', {'consumer': consumer, 'tag': tag, 'delay': delay}))
        self._kick()

    def reject(self, consumer: str, tag: int, reason: str) -> None:
        self.verdicts.append(('reject', {'consumer': consumer, 'tag': tag, 'reason': reason}))
        self._kick()

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
        if self._sender is not None:
            self._sender.kill(block=False)
        self.link.close()

    def _on_notify(self, msg: wire.Message) -> None:
        body = msg.body
        if msg.subject != 'event' or not isinstance(body, dict):
            return
        consumer, tag, data = body.get('consumer'), body.get('tag'), body.get('event')
        sub = self.subs.get(consumer) if isinstance(consumer, str) else None
        if sub is None or type(tag) is not int:
            return  # cancelled (the hub gives it to someone else), or no delivery of ours
        sub.deliver(tag, data, data.get('attempt', 1) if isinstance(data, dict) else 1)

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
