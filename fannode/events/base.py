"""What every events backend offers, and the consumer side they share: running
handlers, acking after they return, retrying with backoff, dead-lettering."""
from __future__ import annotations

import abc
import logging
import time
from typing import Any, Callable

import gevent
import gevent.pool
import gevent.queue

from fannode.core import deadline
from fannode.core.events import Event, check_delay, check_pattern, check_retry, check_type
from fannode.core.limits import setting
from fannode.events.encoding import Unreadable, decode, encode
from fannode.exceptions import UsageError

log = logging.getLogger(__name__)

# The reason a dead letter carries is an exception's message: bound what it can grow to.
REASON_MAX = setting('FANNODE_EVENT_REASON_MAX', 1000, low=80)

Handler = Callable[[Event], Any]


def backoff(attempt: int) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): 0.1, 0.2, 0.4 ... capped at 10."""
    return min(10.0, 0.1 * 2 ** min(max(attempt, 1) - 1, 10))  # the exponent bounded: 2**1e9 never ends


def describe(error: BaseException) -> str:
    """'ValueError: no': the reason a dead letter carries, on one line and bounded, even
    from an exception whose str() raises."""
    try:
        text = str(error)
    except Exception:
        text = '(its message cannot be read)'
    text = ' '.join(text.splitlines())
    if len(text) > REASON_MAX:
        text = text[:REASON_MAX] + '... (%d characters)' % len(text)
    return '%s: %s' % (type(error).__name__, text) if text else type(error).__name__


def prepare(event: Event, delay: Any) -> tuple[bytes, dict[str, Any], float]:
    """What every backend's emit does first: check the delay and encode the event (see
    encoding.encode), raising to the emitter when either cannot be sent."""
    check_type(event.type)
    delay = check_delay(event.type, delay)
    raw, copy = encode(event)
    return raw, copy, delay


class Subscription:
    """One consumer: its handler, how many times a failure is retried, and whether
    events are handled one at a time.

    Backends hand it each delivery's decoded message (`deliver`); one that is not an
    event is dead-lettered at once. A handler that raises anything (even SystemExit)
    fails that event only: retried, then dead-lettered. Nothing is left unacknowledged,
    so no event can hold a consumer's window."""

    def __init__(self, backend: 'EventSystem', consumer: str, queue: str, patterns: list[str],
                 handler: Handler, retry: int = 0, sequential: bool = False, durable: bool = True,
                 exclusive: bool = False, prefetch: int = 100, shard: str | None = None,
                 member: str | None = None):
        if not patterns:
            raise UsageError('cannot consume from %s: no patterns' % queue)
        for pattern in patterns:  # a broker would bind anything, or refuse it far from here
            check_pattern(pattern)
        self.backend = backend
        self.consumer = consumer
        self.queue = queue
        self.patterns = patterns
        self.handler = handler
        self.retry = check_retry(retry)
        self.durable = durable
        self.exclusive = exclusive
        self.shard = shard  # the body field the broker routes this queue's events by
        self.member = member  # who this consumer is for the keys: its instance id
        self.prefetch = 1 if sequential else prefetch
        self.sequential = sequential
        self.stopping = False
        self.running = gevent.pool.Group()
        self._inbox: gevent.queue.Queue | None = gevent.queue.Queue() if sequential else None
        self._busy = False
        self._worker = gevent.spawn(self._work) if sequential else None

    def deliver(self, tag: int, data: Any, attempt: Any = 1) -> None:
        """A delivery: its decoded message, and which attempt this is. Never blocks: a
        backend calls it from where it reads deliveries."""
        try:
            event = decode(data, attempt)
        except Unreadable as e:
            self.unreadable(tag, str(e))
            return
        except Exception as e:  # noqa: BLE001 - a reader's bug must not leave the delivery unacked
            self.unreadable(tag, describe(e))
            return
        self.dispatch(tag, event)

    def unreadable(self, tag: int, reason: str) -> None:
        """Dead-letter a delivery that is not an event, at once. Never blocks."""
        self.running.spawn(self._refuse, self.consumer, tag, 'cannot read it: %s' % reason)

    def _refuse(self, consumer: str, tag: int, reason: str) -> None:
        log.error('dead-lettering a delivery from queue %s: %s', self.queue, reason)
        self.backend.reject(consumer, tag, reason)

    def dispatch(self, tag: int, event: Event) -> None:
        # The consumer id goes with the event: after a hub restart the subscription
        # consumes under a new id, and acks for the old deliveries must not match new ones.
        if self._inbox is not None:
            self._inbox.put((self.consumer, tag, event))
        else:
            self.running.spawn(self._handle, self.consumer, tag, event)

    def _work(self) -> None:
        inbox = self._inbox
        assert inbox is not None  # sequential subscriptions only
        while True:
            item = inbox.get()
            self._busy = True
            try:
                self._handle(*item)
            finally:
                self._busy = False

    def _handle(self, consumer: str, tag: int, event: Event) -> None:
        expires = event.expires
        if expires is not None:
            left = expires - time.time()
            if left <= 0:  # too late to be of use: dead-lettered (the backend logs it), never run late
                reason = 'ttl expired: not handled within %gs of being emitted (%.3fs late, attempt %d)' % (
                    event.headers['ttl'], -left, event.attempt)
                self.backend.reject(consumer, tag, reason)
                return
            # The handler's calls get no more time than the event has left.
            token = deadline.set(time.monotonic() + left)
        try:
            self.handler(event)
        except BaseException as e:
            if isinstance(e, gevent.GreenletExit) and self.stopping:
                raise  # killed while stopping: unacked, it goes back to the queue
            reason = describe(e)
            if event.attempt <= self.retry:
                log.warning('handler of %s for event %s failed (attempt %d of %d), retrying: %s',
                            self.queue, event.id, event.attempt, self.retry + 1, reason)
                self.backend.retry(consumer, tag, backoff(event.attempt))
            else:
                log.error('handler of %s failed on event %s %s after %d attempt(s); dead-lettered',
                          self.queue, event.type, event.id, event.attempt, exc_info=e)
                self.backend.reject(consumer, tag, reason)
            return
        finally:
            if expires is not None:
                deadline.reset(token)
        self.backend.ack(consumer, tag)

    def stop(self, timeout: float) -> None:
        """Take no more events; let those taken finish within `timeout`."""
        if self._worker is not None:
            waiter = gevent.spawn(self._wait_inbox)
            waiter.join(timeout)
            waiter.kill(block=False)
        self.stopping = True
        if self._worker is not None:
            self._worker.kill(block=False)
        self.running.join(timeout=timeout)

    def _wait_inbox(self) -> None:
        while self._busy or (self._inbox is not None and not self._inbox.empty()):
            gevent.sleep(0.01)


class EventSystem(abc.ABC):
    """An events backend, chosen by URL scheme (entry point group `fannode.events`)."""

    def __init__(self, url: str):
        self.url = url

    def check(self) -> None:
        """Raise RegistryUnavailable at once if the broker cannot be reached."""

    @abc.abstractmethod
    def emit(self, event: Event, delay: float | None = None) -> None:
        """Queue `event` for sending; returns at once. `flush` waits until it is sent.
        An event that cannot be sent raises here (UsageError, Unsendable): see `prepare`."""

    @abc.abstractmethod
    def flush(self, timeout: float) -> bool:
        """Wait until every emitted event is accepted by the broker; False on timeout."""

    @abc.abstractmethod
    def subscribe(self, queue: str, patterns: list[str], handler: Handler, *, retry: int = 0,
                  sequential: bool = False, durable: bool = True, exclusive: bool = False,
                  shard: str | None = None, member: str | None = None) -> Subscription:
        """Consume from `queue` (created if needed, bound to `patterns`). A durable queue
        outlives its consumers; an exclusive one is deleted when its consumer goes. With
        `shard` (a body field), each key's events go to one consumer, in order: the one
        whose `member` (its instance id) owns the key, as RPC calls pick their owner."""

    @abc.abstractmethod
    def ack(self, consumer: str, tag: int) -> None: ...

    @abc.abstractmethod
    def retry(self, consumer: str, tag: int, delay: float) -> None: ...

    @abc.abstractmethod
    def reject(self, consumer: str, tag: int, reason: str) -> None: ...

    @abc.abstractmethod
    def unsubscribe(self, sub: Subscription, timeout: float = 5.0) -> None:
        """Stop taking events; let running handlers finish (and ack) within `timeout`."""

    def close(self, timeout: float = 5.0) -> None:
        """Unsubscribe everything, send what is queued, release connections."""
