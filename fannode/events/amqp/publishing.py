"""Publishing: the outbox (emits, and the retries and dead letters of the consumer), publisher
confirms (a message is sent once RabbitMQ confirms it), and the delay queues that hold a
message back. Declares the exchanges and the dead letter queue on each connection."""
from __future__ import annotations

import collections
import copy
import logging
import math
import struct
import time
from typing import Any, Callable

import gevent
import gevent.event
import pika
import pika.exceptions
import pika.spec

from fannode.core.events import Event
from fannode.events.amqp.connection import Lost, Owner, reason
from fannode.events.base import prepare
from fannode.exceptions import UsageError

log = logging.getLogger('fannode.events.amqp')  # the backend's one logger

EXCHANGE = 'fannode.events'
DELAY = 'fannode.delay'
RETRY = 'fannode.retry'
DEAD = 'fannode.dead'
WINDOW = 1000           # publishes awaiting confirmation at once
MAX_DELAY_MS = 2 ** 32 - 1
MAX_KEY = 255  # bytes of a routing key: an AMQP short string
# What pika raises for a message it cannot encode (a routing key over 255 bytes, a header
# of a type AMQP lacks): that message is dropped, not taken for a lost connection.
UNENCODABLE = (pika.exceptions.ShortStringTooLong, pika.exceptions.UnsupportedAMQPFieldException,
               TypeError, ValueError, OverflowError, struct.error)
# A delay queue nobody uses goes an hour after its TTL; we re-declare the ones we publish to
# every half hour, so none can go while it still holds a message.
UNUSED_MS = 3_600_000
REDECLARE = 1800.0


def check_key(what: str, key: str) -> None:
    """A routing or binding key RabbitMQ takes (when $FANNODE_EVENT_TYPE_MAX allows longer)."""
    if len(key.encode()) > MAX_KEY:
        raise UsageError('%s %s...: %d bytes, and RabbitMQ takes at most %d'
                         % (what, key[:40], len(key.encode()), MAX_KEY))


def delay_ms(seconds: float) -> int:
    """`seconds` in milliseconds, rounded up to 3 significant digits: each distinct delay has
    a queue of its own, so keep them few (at most 1% later than asked, never earlier). At
    most MAX_DELAY_MS: rounding up past RabbitMQ's limit would make the queue undeclarable."""
    if seconds <= 0:
        return 0
    ms = math.ceil(seconds * 1000)
    step = 10 ** max(0, len(str(ms)) - 3)
    return min(-(-ms // step) * step, MAX_DELAY_MS)


def queue_args(exchange: str, ms: int) -> dict[str, Any]:
    """The arguments of the queue holding messages for `ms`. Its `x-expires` has the same limit
    as its TTL; where an hour past the TTL would be over it, the queue has none: an expiry
    closer to the TTL could delete it, messages and all, before they are due."""
    args: dict[str, Any] = {'x-message-ttl': ms,
                            'x-dead-letter-exchange': EXCHANGE if exchange == DELAY else ''}
    if ms + UNUSED_MS <= MAX_DELAY_MS:
        args['x-expires'] = ms + UNUSED_MS
    return args


class Out:
    """A message for the owner to publish. While `due` (monotonic) is ahead it goes through
    the `delays` exchange. `then` runs once RabbitMQ confirms it: a retry or dead letter acks
    the delivery it replaces only then."""

    __slots__ = ('exchange', 'key', 'body', 'props', 'due', 'delays', 'then')

    def __init__(self, exchange: str, key: str, body: bytes, props: pika.BasicProperties,
                 due: float | None, delays: str | None, then: Callable[[], None] | None = None):
        self.exchange, self.key, self.body, self.props = exchange, key, body, props
        self.due, self.delays, self.then = due, delays, then


def again(props: pika.BasicProperties, **headers: Any) -> pika.BasicProperties:
    """The properties of a delivery, to publish it again: without RabbitMQ's x-death record
    and our routing header, plus `headers`."""
    props = copy.copy(props)
    props.headers = {k: v for k, v in (props.headers or {}).items()
                     if not k.startswith('x-') and k != 'fannode-delay'}
    props.headers.update(headers)
    return props


class Publisher:
    def __init__(self, owner: Owner):
        self.owner = owner
        self.outbox: collections.deque[Out] = collections.deque()
        self.unconfirmed: dict[int, Out] = {}   # by publish sequence number, ascending
        self.declared: dict[str, float] = {}    # delay queues declared on this connection, when
        self.channel: Any = None                # the channel we publish on, in confirm mode
        self.seq = 0
        self.discarded = 0                      # messages pika could not encode
        self.idle = gevent.event.Event()
        self.idle.set()

    # -- called from any greenlet ------------------------------------------------------

    def emit(self, event: Event, delay: float | None = None) -> None:
        raw, _, seconds = prepare(event, delay)
        check_key('event type', event.type)
        due = None
        if seconds:
            # Only when $FANNODE_EVENT_DELAY_MAX raises check_delay's limit past RabbitMQ's:
            # delay_ms would clamp the delay, and the event would come early.
            if seconds * 1000 > MAX_DELAY_MS:
                raise UsageError('event %s: delay %gs is longer than RabbitMQ allows (%d days)'
                                 % (event.type, seconds, MAX_DELAY_MS // 86_400_000))
            due = time.monotonic() + seconds
        props = pika.BasicProperties(
            content_type='application/msgpack', delivery_mode=pika.DeliveryMode.Persistent,
            message_id=event.id, type=event.type, timestamp=int(event.time), app_id='fannode',
            headers={'trace_id': event.trace_id, 'source': event.source, 'attempt': 1})
        self.outbox.append(Out(EXCHANGE, event.type, raw, props, due, DELAY))
        self.idle.clear()
        self.owner.kick()

    def flush(self, timeout: float) -> bool:
        return self.idle.wait(timeout)

    def unsent(self) -> int:
        return sum(1 for item in [*self.outbox, *self.unconfirmed.values()] if item.then is None)

    # -- pika callbacks, on the hub: no pika calls here --------------------------------

    def _on_confirm(self, frame: Any) -> None:
        tag, nack = frame.method.delivery_tag, isinstance(frame.method, pika.spec.Basic.Nack)
        seqs = [tag]
        if frame.method.multiple:
            seqs = []
            for seq in self.unconfirmed:  # ascending
                if seq > tag:
                    break
                seqs.append(seq)
        items = [item for item in map(self.unconfirmed.pop, seqs, [None] * len(seqs)) if item is not None]
        if nack:  # RabbitMQ could not take them: send them again, first
            log.warning('RabbitMQ at %s refused %d message(s); sending them again',
                        self.owner.where, len(items))
            self.outbox.extendleft(reversed(items))
        else:
            self.owner.commands.extend((item.then, (), None) for item in items if item.then is not None)
        self._check_idle()
        self.owner.wake.set()

    def _check_idle(self) -> None:
        if not self.outbox and not self.unconfirmed:
            self.idle.set()

    # -- the owner greenlet ------------------------------------------------------------

    def opened(self) -> None:
        """On a new connection: the channel to publish on, and what every client declares."""
        sync = self.owner.sync
        self.channel, _ = self.owner.channel()
        self.seq = 0
        sync(lambda cb: self.channel.confirm_delivery(self._on_confirm, callback=cb))
        for name, kind in ((EXCHANGE, 'topic'), (DELAY, 'headers'), (RETRY, 'headers'), (DEAD, 'fanout')):
            sync(lambda cb: self.channel.exchange_declare(name, kind, durable=True, callback=cb))
        sync(lambda cb: self.channel.queue_declare(DEAD, durable=True, callback=cb))
        sync(lambda cb: self.channel.queue_bind(DEAD, DEAD, callback=cb))

    def put_first(self, item: Out) -> None:
        """A retry or dead letter: it goes out ahead of the emits waiting."""
        self.outbox.appendleft(item)
        self.idle.clear()

    def publish(self) -> None:
        sent = 0
        while self.outbox and len(self.unconfirmed) < WINDOW:
            item = self.outbox[0]
            exchange, props = item.exchange, item.props
            ms = delay_ms(item.due - time.monotonic()) if item.due is not None else 0
            if ms and item.delays is not None:  # a message with a `due` always has `delays`
                self._delay_queue(item.delays, ms)
                exchange = item.delays
                props = copy.copy(props)
                props.headers = dict(props.headers or {}, **{'fannode-delay': str(ms)})
            try:
                self.channel.basic_publish(exchange, item.key, item.body, props)
            except UNENCODABLE as e:  # this message only: dropping it keeps the rest going
                self.outbox.popleft()
                self._drop(item, e)
                continue
            except pika.exceptions.AMQPError as e:
                raise Lost(reason(e)) from None
            self.outbox.popleft()
            self.seq += 1
            self.unconfirmed[self.seq] = item
            sent += 1
            if sent % 200 == 0:
                gevent.sleep(0)  # let the hub write them out and read confirms
                self.owner.raise_if_lost()
        self._check_idle()

    def _drop(self, item: Out, error: Exception) -> None:
        self.discarded += 1
        log.error('cannot publish message %s (%s) to %s: %s: %s; dropped it (%d so far)',
                  item.props.message_id or '?', item.key, item.exchange or item.key, type(error).__name__,
                  error, self.discarded)
        if item.then is not None:  # a retry or dead letter: its delivery must not stay held
            item.then()

    def _delay_queue(self, exchange: str, ms: int) -> None:
        """Declare the queue holding messages for `ms`: one per delay, so they all expire in
        the order they came (a per-message TTL would wait behind a longer one ahead of it)."""
        name = '%s.%d' % (exchange, ms)
        now = time.monotonic()
        if name in self.declared and now - self.declared[name] < REDECLARE:
            return
        args = queue_args(exchange, ms)
        sync, channel = self.owner.sync, self.channel
        sync(lambda cb: channel.queue_declare(name, durable=True, arguments=args, callback=cb))
        binding = {'x-match': 'all', 'fannode-delay': str(ms)}
        sync(lambda cb: channel.queue_bind(name, exchange, arguments=binding, callback=cb))
        self.declared[name] = now

    def dropped(self) -> None:
        """The connection is gone. Emits not confirmed are sent again (maybe twice: at least
        once). A retry or dead letter not confirmed is dropped: the delivery it stands for is
        not acked either, so RabbitMQ delivers it again."""
        self.channel = None
        emits = [item for item in [*self.unconfirmed.values(), *self.outbox] if item.then is None]
        self.outbox = collections.deque(emits)
        self.unconfirmed.clear()
        self.declared.clear()
        self._check_idle()
