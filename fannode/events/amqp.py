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
"""
from __future__ import annotations

import collections
import copy
import functools
import logging
import math
import time
import uuid
from typing import Any, Callable

import gevent
import gevent.event
import pika
import pika.exceptions
import pika.spec
from pika.adapters import gevent_connection

from fannode.core import serial
from fannode.core.events import Event
from fannode.events.base import EventSystem, Handler, Subscription
from fannode.exceptions import FannodeError, RegistryUnavailable, UsageError

log = logging.getLogger(__name__)

EXCHANGE = 'fannode.events'
DELAY = 'fannode.delay'
RETRY = 'fannode.retry'
DEAD = 'fannode.dead'
WINDOW = 1000           # publishes awaiting confirmation at once
ANSWER_TIMEOUT = 10.0   # for one declare, bind, consume ... and for a subscribe to start
MAX_PAUSE = 2.0         # between reconnection attempts
MAX_DELAY_MS = 2 ** 32 - 1
# A delay queue nobody uses goes an hour after its TTL; we re-declare the ones we publish to
# every half hour, so none can go while it still holds a message.
UNUSED_MS = 3_600_000
REDECLARE = 1800.0

# pika logs every failed connection attempt at ERROR, with tracebacks; we log one line per
# outage ourselves. Unless the application set a level for pika, keep it quiet.
if logging.getLogger('pika').level == logging.NOTSET:
    logging.getLogger('pika').setLevel(logging.CRITICAL)

_io: dict[Any, Any] = {}


def _io_services() -> Any:
    """pika's gevent I/O adapter for this thread's hub, shared: GeventConnection makes one per
    connection attempt otherwise, each with a pipe it never closes, and a long outage would
    run the process out of file descriptors. (Private names of pika's, the same in 1.3 and 1.4.)"""
    hub = gevent.get_hub()
    if hub not in _io:
        _io[hub] = gevent_connection._GeventSelectorIOServicesAdapter(
            gevent_connection._GeventSelectorIOLoop(hub))
    return _io[hub]


class _Connection(gevent_connection.GeventConnection):
    """pika writes every frame (three per message) with a send() of its own, and those
    syscalls were most of the time spent publishing: collect what it writes during one turn
    of the gevent loop and send it at once."""

    _out: list[bytes] | None = None

    def _adapter_emit_data(self, data: bytes) -> None:  # pika's hook for adapters
        if self._out is None:
            self._out = []
            gevent.get_hub().loop.run_callback(self._write_out)
        self._out.append(data)

    def _write_out(self) -> None:
        out, self._out = self._out, None
        if self._transport is not None:  # else the connection is gone, and this with it
            super()._adapter_emit_data(b''.join(out))


def delay_ms(seconds: float) -> int:
    """`seconds` in milliseconds, rounded up to 3 significant digits: each distinct delay has
    a queue of its own, so keep them few (at most 1% later than asked, never earlier)."""
    if seconds <= 0:
        return 0
    ms = math.ceil(seconds * 1000)
    step = 10 ** max(0, len(str(ms)) - 3)
    return -(-ms // step) * step


def _reason(e: BaseException) -> str:
    """One line for what went wrong; pika wraps the cause in layers, the innermost says it best."""
    while True:
        if getattr(e, 'exceptions', None):
            e = e.exceptions[-1]
        elif isinstance(getattr(e, 'exception', None), BaseException):
            e = e.exception
        elif e.args and isinstance(e.args[0], BaseException):
            e = e.args[0]
        else:
            break
    if isinstance(e, (pika.exceptions.ConnectionClosed, pika.exceptions.ChannelClosed)):
        return '%s %s' % (e.reply_code, e.reply_text)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


class _Lost(Exception):
    """The connection (or a channel, which we treat alike) is gone; `refused` when RabbitMQ
    closed a channel over something we asked for."""

    def __init__(self, reason: str, refused: bool = False):
        super().__init__(reason)
        self.refused = refused


class _Out:
    """A message for the owner to publish. While `due` (monotonic) is ahead it goes through
    the `delays` exchange. `then` runs once RabbitMQ confirms it: a retry or dead letter acks
    the delivery it replaces only then."""

    __slots__ = ('exchange', 'key', 'body', 'props', 'due', 'delays', 'then')

    def __init__(self, exchange: str, key: str, body: bytes, props: pika.BasicProperties,
                 due: float | None, delays: str | None, then: Callable[[], None] | None = None):
        self.exchange, self.key, self.body, self.props = exchange, key, body, props
        self.due, self.delays, self.then = due, delays, then


def _again(props: pika.BasicProperties, **headers: Any) -> pika.BasicProperties:
    """The properties of a delivery, to publish it again: without RabbitMQ's x-death record
    and our routing header, plus `headers`."""
    props = copy.copy(props)
    props.headers = {k: v for k, v in (props.headers or {}).items()
                     if not k.startswith('x-') and k != 'fannode-delay'}
    props.headers.update(headers)
    return props


class AmqpEvents(EventSystem):
    def __init__(self, url: str):
        super().__init__(url)
        try:
            self.params = pika.URLParameters(url)
        except ValueError as e:
            raise UsageError('bad RabbitMQ URL %r: %s' % (url, e)) from None
        self.where = '%s:%d' % (self.params.host, self.params.port)
        # How long check() and subscribe() wait for a connection: pika gives up on its own first.
        self.patience = ANSWER_TIMEOUT + self.params.socket_timeout + self.params.stack_timeout
        self.subs: list[Subscription] = []
        self.outbox: collections.deque[_Out] = collections.deque()
        self._commands: collections.deque[tuple[Callable, tuple, gevent.event.AsyncResult | None]] = \
            collections.deque()
        self._pending: dict[Subscription, gevent.event.AsyncResult] = {}  # subscribed, not consuming yet
        self._unconfirmed: dict[int, _Out] = {}   # by publish sequence number, ascending
        self._live: dict[str, tuple[Any, Subscription]] = {}  # consumer tag -> (channel, sub)
        self._held: dict[tuple[str, int], tuple[str, pika.BasicProperties, bytes]] = {}  # unacked deliveries
        self._declared: dict[str, float] = {}  # delay queues declared on this connection, when
        self._conn: Any = None
        self._pub: Any = None  # the channel we publish on, in confirm mode
        self._seq = 0
        self._lost = gevent.event.Event()
        self._lost_reason = ''
        self._wake = gevent.event.Event()
        self._idle = gevent.event.Event()
        self._idle.set()
        self._up = gevent.event.Event()     # connected
        self._tried = gevent.event.Event()  # a first connection attempt has ended, either way
        self._stop = gevent.event.Event()
        self._last_error = ''
        self._owner: gevent.Greenlet | None = None

    def check(self) -> None:
        self._kick()
        self._tried.wait(self.patience)
        if not self._up.is_set():
            raise RegistryUnavailable('cannot reach RabbitMQ at %s: %s'
                                      % (self.where, self._last_error or 'no answer'))

    # -- emitting ------------------------------------------------------------------

    def emit(self, event: Event, delay: float | None = None) -> None:
        due = None
        if delay:
            if delay * 1000 > MAX_DELAY_MS:
                raise UsageError('event %s: delay %gs is longer than RabbitMQ allows (%d days)'
                                 % (event.type, delay, MAX_DELAY_MS // 86_400_000))
            due = time.monotonic() + delay
        props = pika.BasicProperties(
            content_type='application/msgpack', delivery_mode=pika.DeliveryMode.Persistent,
            message_id=event.id, type=event.type, timestamp=int(event.time), app_id='fannode',
            headers={'trace_id': event.trace_id, 'source': event.source, 'attempt': 1})
        self.outbox.append(_Out(EXCHANGE, event.type, serial.dumps(event.to_dict()), props, due, DELAY))
        self._idle.clear()
        self._kick()

    def flush(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def _unsent(self) -> int:
        return sum(1 for item in [*self.outbox, *self._unconfirmed.values()] if item.then is None)

    # -- consuming -----------------------------------------------------------------

    def subscribe(self, queue: str, patterns: list[str], handler: Handler, *, retry: int = 0,
                  sequential: bool = False, durable: bool = True, exclusive: bool = False) -> Subscription:
        sub = Subscription(self, '', queue, list(patterns), handler, retry=retry,
                           sequential=sequential, durable=durable, exclusive=exclusive)
        started = self._pending[sub] = gevent.event.AsyncResult()
        self.subs.append(sub)
        self._command(self._start, sub)
        started.wait(self.patience)
        if not started.successful():
            self._pending.pop(sub, None)
            if sub in self.subs:
                self.subs.remove(sub)
            sub.stop(0)
            self._commands.append((self._cancel, (sub.consumer,), None))  # in case it starts after all
            raise started.exception or RegistryUnavailable(
                'RabbitMQ at %s did not start consuming from %s in time' % (self.where, queue))
        return sub

    def ack(self, consumer: str, tag: int) -> None:
        self._command(self._ack, consumer, tag)

    def retry(self, consumer: str, tag: int, delay: float) -> None:
        self._command(self._retry, consumer, tag, delay)

    def reject(self, consumer: str, tag: int, reason: str) -> None:
        self._command(self._reject, consumer, tag, reason)

    def unsubscribe(self, sub: Subscription, timeout: float = 5.0) -> None:
        if sub not in self.subs:
            return
        self.subs.remove(sub)  # deliveries from now on are left to go back to the queue
        self._pending.pop(sub, None)
        sub.stop(timeout)      # running handlers finish; their acks are queued before the cancel
        if self._up.is_set():
            done = gevent.event.AsyncResult()
            self._commands.append((self._cancel, (sub.consumer,), done))
            self._kick()
            done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        for sub in list(self.subs):
            self.unsubscribe(sub, timeout)
        if self._owner is None:
            return
        if not self.flush(timeout):
            log.error('%d event(s) not sent to RabbitMQ at %s within %gs of stopping: they are lost',
                      self._unsent(), self.where, timeout)
        self._stop.set()
        self._wake.set()
        self._owner.join(timeout=2.0)
        self._owner.kill(block=False)

    # -- called from other greenlets: hand work to the owner -------------------------

    def _kick(self) -> None:
        if self._owner is None and not self._stop.is_set():
            self._owner = gevent.spawn(self._run)
        self._wake.set()

    def _command(self, fn: Callable, *args: Any) -> None:
        self._commands.append((fn, args, None))
        self._kick()

    # -- pika callbacks, on the hub: no pika calls here --------------------------------

    def _on_lost(self, lost: gevent.event.Event, exc: BaseException) -> None:
        if not lost.is_set():
            self._lost_reason = _reason(exc)
            lost.set()
            self._wake.set()

    def _on_channel_closed(self, lost: gevent.event.Event, closed: gevent.event.AsyncResult, channel: Any,
                           exc: BaseException) -> None:
        if isinstance(exc, pika.exceptions.ChannelClosedByClient):
            return
        closed.set(exc)
        # The publishing channel or a consuming one: start over on a new connection. A
        # channel still being set up only fails that setup (see _start).
        if channel is self._pub or any(channel is c for c, _ in self._live.values()):
            self._on_lost(lost, exc)

    def _on_confirm(self, frame: Any) -> None:
        tag, nack = frame.method.delivery_tag, isinstance(frame.method, pika.spec.Basic.Nack)
        seqs = [tag]
        if frame.method.multiple:
            seqs = []
            for seq in self._unconfirmed:  # ascending
                if seq > tag:
                    break
                seqs.append(seq)
        items = [item for item in map(self._unconfirmed.pop, seqs, [None] * len(seqs)) if item is not None]
        if nack:  # RabbitMQ could not take them: send them again, first
            log.warning('RabbitMQ at %s refused %d message(s); sending them again', self.where, len(items))
            self.outbox.extendleft(reversed(items))
        else:
            self._commands.extend((item.then, (), None) for item in items if item.then is not None)
        self._check_idle()
        self._wake.set()

    def _on_message(self, sub: Subscription, channel: Any, method: Any, props: pika.BasicProperties,
                    body: bytes) -> None:
        consumer, tag = method.consumer_tag, method.delivery_tag
        if consumer != sub.consumer or sub not in self.subs:
            return  # unsubscribing: it goes back to the queue when the channel closes
        self._held[consumer, tag] = (method.routing_key, props, body)
        try:
            event = Event.from_dict(serial.loads(body))
        except Exception as e:
            log.error('cannot read a message from queue %s (routing key %s): %s: %s',
                      sub.queue, method.routing_key, type(e).__name__, e)
            self.reject(consumer, tag, 'cannot read it: %s: %s' % (type(e).__name__, e))
            return
        event.headers['attempt'] = (props.headers or {}).get('attempt', 1)
        sub.dispatch(tag, event)

    def _check_idle(self) -> None:
        if not self.outbox and not self._unconfirmed:
            self._idle.set()

    # -- the owner greenlet: every other pika call ------------------------------------

    def _run(self) -> None:
        pause, down_since = 0.1, None
        while not self._stop.is_set():
            try:
                self._connect()
                self._up.set()
                self._tried.set()
                if down_since is not None:
                    log.info('connected to RabbitMQ at %s again after %.1fs', self.where,
                             time.monotonic() - down_since)
                pause, down_since = 0.1, None
                self._serve()
            except Exception as e:
                self._last_error = _reason(e)
                if not isinstance(e, (_Lost, pika.exceptions.AMQPError)):
                    log.exception('RabbitMQ connection to %s failed', self.where)  # a bug of ours
            finally:
                was_up = self._up.is_set()
                self._drop()
            if self._stop.is_set():
                break
            self._fail_pending(RegistryUnavailable('cannot reach RabbitMQ at %s: %s'
                                                   % (self.where, self._last_error)))
            if was_up:
                down_since = time.monotonic()
                log.warning('lost the connection to RabbitMQ at %s: %s; reconnecting (%d event(s) '
                            'waiting to be sent)', self.where, self._last_error, self._unsent())
            elif down_since is None:  # never up: check() or subscribe() tell the caller
                down_since = time.monotonic()
                log.info('cannot reach RabbitMQ at %s: %s; trying again', self.where, self._last_error)
            self._tried.set()
            self._stop.wait(pause)
            pause = min(pause * 2, MAX_PAUSE)

    def _connect(self) -> None:
        self._lost = lost = gevent.event.Event()  # callbacks of a connection only ever set its own
        opened = gevent.event.AsyncResult()
        self._conn = _Connection(
            self.params, on_open_callback=opened.set,
            on_open_error_callback=lambda conn, e: opened.set_exception(e),
            on_close_callback=lambda conn, e: self._on_lost(lost, e), custom_ioloop=_io_services())
        opened.wait(self.patience)
        if not opened.ready():
            raise _Lost('no answer')
        if opened.exception is not None:
            raise _Lost(_reason(opened.exception))
        self._pub, _ = self._channel()
        self._seq = 0
        self._sync(lambda cb: self._pub.confirm_delivery(self._on_confirm, callback=cb))
        for name, kind in ((EXCHANGE, 'topic'), (DELAY, 'headers'), (RETRY, 'headers'), (DEAD, 'fanout')):
            self._sync(lambda cb: self._pub.exchange_declare(name, kind, durable=True, callback=cb))
        self._sync(lambda cb: self._pub.queue_declare(DEAD, durable=True, callback=cb))
        self._sync(lambda cb: self._pub.queue_bind(DEAD, DEAD, callback=cb))
        for sub in list(self.subs):
            self._start(sub)

    def _serve(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._lost.is_set():
                raise _Lost(self._lost_reason)
            while self._commands:
                fn, args, done = self._commands.popleft()
                try:
                    value = fn(*args)
                except BaseException as e:
                    if done is not None:
                        done.set_exception(e)
                    raise
                if done is not None:
                    done.set(value)
            self._publish()
            if self._stop.is_set():
                if not (self._conn.is_closing or self._conn.is_closed):
                    self._conn.close()
                self._lost.wait(2.0)
                return

    def _drop(self) -> None:
        """After a connection: what it held comes back from RabbitMQ, or goes out again."""
        conn, self._conn, self._pub = self._conn, None, None
        self._up.clear()
        if conn is not None and not (conn.is_closed or conn.is_closing):
            try:
                conn.close()
            except pika.exceptions.AMQPError:
                pass
        # Emits not confirmed are sent again (maybe twice: at least once). A retry or dead
        # letter not confirmed is dropped: the delivery it stands for is not acked either,
        # so RabbitMQ delivers it again.
        again = [item for item in [*self._unconfirmed.values(), *self.outbox] if item.then is None]
        self.outbox = collections.deque(again)
        self._unconfirmed.clear()
        self._live.clear()
        self._held.clear()
        self._declared.clear()
        while self._commands:  # acks and such for this connection's deliveries: moot now
            _, _, done = self._commands.popleft()
            if done is not None:
                done.set(None)
        self._check_idle()

    def _fail_pending(self, error: FannodeError) -> None:
        for sub, started in list(self._pending.items()):
            del self._pending[sub]
            if sub in self.subs:
                self.subs.remove(sub)
            started.set_exception(error)

    def _sync(self, start: Callable[[Callable[[Any], None]], Any],
              closed: gevent.event.AsyncResult | None = None) -> Any:
        """Start one pika operation that answers through a callback, and wait for the answer
        (or for the connection, or the channel `closed` tells of, to go)."""
        done = gevent.event.AsyncResult()
        start(done.set)
        gevent.wait([done, self._lost] + ([closed] if closed is not None else []),
                    timeout=ANSWER_TIMEOUT, count=1)
        if done.ready():
            return done.get()
        if closed is not None and closed.ready():
            raise _Lost(_reason(closed.get()), refused=True)
        if self._lost.is_set():
            raise _Lost(self._lost_reason)
        raise _Lost('RabbitMQ did not answer within %gs' % ANSWER_TIMEOUT)

    def _channel(self) -> tuple[Any, gevent.event.AsyncResult]:
        """A new channel, and what closes it if RabbitMQ does."""
        closed = gevent.event.AsyncResult()
        channel = self._sync(lambda cb: self._conn.channel(on_open_callback=cb))
        channel.add_on_close_callback(functools.partial(self._on_channel_closed, self._lost, closed))
        return channel, closed

    def _start(self, sub: Subscription) -> None:
        """Consume for `sub` on this connection, on a channel of its own (its prefetch)."""
        if sub in self.subs and sub.consumer not in self._live:
            try:
                channel, closed = self._channel()
                # RabbitMQ cancels a consumer whose queue goes (deleted by hand, say): start
                # over, which declares the queue again.
                channel.add_on_cancel_callback(lambda frame, lost=self._lost: self._on_lost(
                    lost, FannodeError('RabbitMQ cancelled consuming from %s' % sub.queue)))
                sync = functools.partial(self._sync, closed=closed)
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
            except _Lost as e:
                if not e.refused:
                    raise
                error = FannodeError('RabbitMQ at %s refused queue %s: %s' % (self.where, sub.queue, e))
                started = self._pending.pop(sub, None)
                if started is None:  # consuming again after a reconnection: keep trying
                    log.error('%s; trying again', error)
                    raise
                self.subs.remove(sub)  # a new subscription: its caller hears why
                started.set_exception(error)
                return
            self._live[sub.consumer] = (channel, sub)
        started = self._pending.pop(sub, None)
        if started is not None:
            started.set(None)

    def _cancel(self, consumer: str) -> None:
        live = self._live.pop(consumer, None)
        for key in [k for k in self._held if k[0] == consumer]:
            del self._held[key]
        if live is not None and live[0].is_open:
            live[0].close()  # cancels; what it still holds unacked goes back to the queue

    def _ack(self, consumer: str, tag: int) -> None:
        self._held.pop((consumer, tag), None)
        live = self._live.get(consumer)
        if live is not None and live[0].is_open:
            live[0].basic_ack(tag)

    def _retry(self, consumer: str, tag: int, delay: float) -> None:
        held, live = self._held.pop((consumer, tag), None), self._live.get(consumer)
        if held is None or live is None:
            return  # from a connection gone since: RabbitMQ delivers it again
        _, props, body = held
        props = _again(props, attempt=(props.headers or {}).get('attempt', 1) + 1)
        then = functools.partial(self._ack, consumer, tag)
        self.outbox.appendleft(_Out('', live[1].queue, body, props, time.monotonic() + delay, RETRY, then))
        self._idle.clear()

    def _reject(self, consumer: str, tag: int, reason: str) -> None:
        held, live = self._held.pop((consumer, tag), None), self._live.get(consumer)
        if held is None or live is None:
            return
        key, props, body = held
        event_type = props.type or key  # after a retry the routing key is the queue's name
        queue, attempt = live[1].queue, (props.headers or {}).get('attempt', 1)
        then = functools.partial(self._dead, consumer, tag, props.message_id, event_type, queue, attempt,
                                 reason)
        props = _again(props, queue=queue, reason=reason)
        self.outbox.appendleft(_Out(DEAD, event_type, body, props, None, None, then))
        self._idle.clear()

    def _dead(self, consumer: str, tag: int, event_id: str | None, event_type: str, queue: str,
              attempt: int, reason: str) -> None:
        self._ack(consumer, tag)
        log.error('dead-lettered event %s (%s) from queue %s after %d attempt(s): %s',
                  event_id or '?', event_type, queue, attempt, reason)

    def _publish(self) -> None:
        sent = 0
        while self.outbox and len(self._unconfirmed) < WINDOW:
            item = self.outbox[0]
            exchange, props = item.exchange, item.props
            ms = delay_ms(item.due - time.monotonic()) if item.due is not None else 0
            if ms:
                self._delay_queue(item.delays, ms)
                exchange = item.delays
                props = copy.copy(props)
                props.headers = dict(props.headers or {}, **{'fannode-delay': str(ms)})
            try:
                self._pub.basic_publish(exchange, item.key, item.body, props)
            except pika.exceptions.AMQPError as e:
                raise _Lost(_reason(e)) from None
            self.outbox.popleft()
            self._seq += 1
            self._unconfirmed[self._seq] = item
            sent += 1
            if sent % 200 == 0:
                gevent.sleep(0)  # let the hub write them out and read confirms
                if self._lost.is_set():
                    raise _Lost(self._lost_reason)
        self._check_idle()

    def _delay_queue(self, exchange: str, ms: int) -> None:
        """Declare the queue holding messages for `ms`: one per delay, so they all expire in
        the order they came (a per-message TTL would wait behind a longer one ahead of it)."""
        name = '%s.%d' % (exchange, ms)
        now = time.monotonic()
        if name in self._declared and now - self._declared[name] < REDECLARE:
            return
        args = {'x-message-ttl': ms, 'x-expires': ms + UNUSED_MS,
                'x-dead-letter-exchange': EXCHANGE if exchange == DELAY else ''}
        self._sync(lambda cb: self._pub.queue_declare(name, durable=True, arguments=args, callback=cb))
        binding = {'x-match': 'all', 'fannode-delay': str(ms)}
        self._sync(lambda cb: self._pub.queue_bind(name, exchange, arguments=binding, callback=cb))
        self._declared[name] = now
