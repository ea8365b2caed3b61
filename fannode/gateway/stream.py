"""Server-sent events: a connection's own subscription (an exclusive queue that goes
with it), each matching event written as one `data:` line of JSON."""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Callable, Iterator

import gevent.queue

from fannode.core.events import Event
from fannode.core.jsonable import to_json

log = logging.getLogger(__name__)

KEEPALIVE = 15.0   # seconds between comments on a quiet stream: proxies keep it open, and a
                   # client that went away is found by the write that fails
BUFFER = 1000      # events held for a client that reads slower than they come; then dropped


def frame(event: Event) -> bytes:
    data = to_json(event.to_dict())
    return ('id: %s\nevent: %s\ndata: %s\n\n' % (event.id, event.type, data.replace('\n', ''))).encode()


class Stream:
    """The body of one SSE response: subscribed at once (so what is emitted after the
    response starts is seen); unsubscribed by close(), which the server calls when the
    response ends: the client went (a write failed), or the gateway stops. An object, not
    a bare generator: a generator never started would skip its `finally` when closed."""

    def __init__(self, events: Any, pattern: str, closing: Callable[[], bool], done: Callable[[], None],
                 keepalive: float = KEEPALIVE):
        self.events, self.pattern, self.closing, self.keepalive = events, pattern, closing, keepalive
        self.inbox: gevent.queue.Queue = gevent.queue.Queue(BUFFER)
        self.dropped = 0
        self._done: Callable[[], None] | None = done
        try:
            self.sub = events.subscribe('gateway.sse.' + uuid.uuid4().hex[:12], [pattern], self.take,
                                        durable=False, exclusive=True, sequential=True)
        except BaseException:
            self._done = None
            done()
            raise

    def take(self, event: Event) -> None:
        try:
            self.inbox.put_nowait(event)
        except gevent.queue.Full:  # a slow reader loses events, not the gateway its memory
            self.dropped += 1

    def __iter__(self) -> Iterator[bytes]:
        yield (': subscribed to %s\n\n' % json.dumps(self.pattern)).encode()
        quiet, tick = 0.0, min(1.0, self.keepalive)  # a stopping gateway is noticed within a tick
        while not self.closing() and self._done is not None:
            try:
                event = self.inbox.get(timeout=tick)
            except gevent.queue.Empty:
                quiet += tick
                if quiet >= self.keepalive:
                    quiet = 0.0
                    yield b': keep-alive\n\n'
                continue
            quiet = 0.0
            if self.dropped:
                yield (': dropped %d event(s): the client read too slowly\n\n' % self.dropped).encode()
                self.dropped = 0
            yield frame(event)

    def close(self) -> None:
        done, self._done = self._done, None
        if done is None:  # closed already
            return
        try:
            self.events.unsubscribe(self.sub, timeout=1.0)
        except Exception as e:  # the broker gone too: nothing more to release here
            log.debug('unsubscribing %s: %s', self.pattern, e)
        finally:
            done()
