"""What every events backend offers, and the consumer side they share: running
handlers, acking after they return, retrying with backoff, dead-lettering."""
from __future__ import annotations

import abc
import logging
from typing import Any, Callable

import gevent
import gevent.pool
import gevent.queue

from fannode.core.events import Event

log = logging.getLogger(__name__)

Handler = Callable[[Event], Any]


def backoff(attempt: int) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): 0.1, 0.2, 0.4 ... capped at 10."""
    return min(10.0, 0.1 * 2 ** (attempt - 1))


class Subscription:
    """One consumer: its handler, how many times a failure is retried, and whether
    events are handled one at a time."""

    def __init__(self, backend: 'EventSystem', consumer: str, queue: str, patterns: list[str],
                 handler: Handler, retry: int = 0, sequential: bool = False, durable: bool = True,
                 exclusive: bool = False, prefetch: int = 100):
        self.backend = backend
        self.consumer = consumer
        self.queue = queue
        self.patterns = patterns
        self.handler = handler
        self.retry = retry
        self.durable = durable
        self.exclusive = exclusive
        self.prefetch = 1 if sequential else prefetch
        self.sequential = sequential
        self.running = gevent.pool.Group()
        self._inbox: gevent.queue.Queue | None = gevent.queue.Queue() if sequential else None
        self._worker = gevent.spawn(self._work) if sequential else None

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
            self._handle(*inbox.get())

    def _handle(self, consumer: str, tag: int, event: Event) -> None:
        try:
            self.handler(event)
        except Exception as e:
            if event.attempt <= self.retry:
                log.warning('handler of %s for event %s failed (attempt %d of %d), retrying: %s: %s',
                            self.queue, event.id, event.attempt, self.retry + 1, type(e).__name__, e)
                self.backend.retry(consumer, tag, backoff(event.attempt))
            else:
                log.exception('handler of %s failed on event %s %s after %d attempt(s); dead-lettered',
                              self.queue, event.type, event.id, event.attempt)
                self.backend.reject(consumer, tag, '%s: %s' % (type(e).__name__, e))
            return
        self.backend.ack(consumer, tag)

    def stop(self, timeout: float) -> None:
        if self._worker is not None:
            if self._inbox is not None and not self._inbox.empty():
                gevent.wait([gevent.spawn(self._wait_inbox)], timeout=timeout)
            self._worker.kill(block=False)
        self.running.join(timeout=timeout)

    def _wait_inbox(self) -> None:
        while self._inbox is not None and not self._inbox.empty():
            gevent.sleep(0.01)


class EventSystem(abc.ABC):
    """An events backend, chosen by URL scheme (entry point group `fannode.events`)."""

    def __init__(self, url: str):
        self.url = url

    def check(self) -> None:
        """Raise RegistryUnavailable at once if the broker cannot be reached."""

    @abc.abstractmethod
    def emit(self, event: Event, delay: float | None = None) -> None:
        """Queue `event` for sending; returns at once. `flush` waits until it is sent."""

    @abc.abstractmethod
    def flush(self, timeout: float) -> bool:
        """Wait until every emitted event is accepted by the broker; False on timeout."""

    @abc.abstractmethod
    def subscribe(self, queue: str, patterns: list[str], handler: Handler, *, retry: int = 0,
                  sequential: bool = False, durable: bool = True, exclusive: bool = False) -> Subscription:
        """Consume from `queue` (created if needed, bound to `patterns`). A durable queue
        outlives its consumers; an exclusive one is deleted when its consumer goes."""

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
