"""The connection to RabbitMQ and its owner greenlet, the only one that calls pika (see the
package docstring): it connects, runs the commands other greenlets hand it, and when the
connection goes, drops what it held and connects again, backing off."""
from __future__ import annotations

import collections
import functools
import logging
import time
from typing import Any, Callable, Protocol

import gevent
import gevent.event
import pika
import pika.exceptions
from pika.adapters import gevent_connection

from fannode.exceptions import FannodeError, RegistryUnavailable

# The backend's one logger, whichever module logs: logging configurations name it.
log = logging.getLogger('fannode.events.amqp')

ANSWER_TIMEOUT = 10.0   # for one declare, bind, consume ... and for a subscribe to start
MAX_PAUSE = 2.0         # between reconnection attempts

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


class BatchingConnection(gevent_connection.GeventConnection):
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
        if out is not None and self._transport is not None:  # no transport: the connection went, and this with it
            super()._adapter_emit_data(b''.join(out))


def reason(e: BaseException) -> str:
    """One line for what went wrong; pika wraps the cause in layers, the innermost says it best."""
    while True:
        group, wrapped = getattr(e, 'exceptions', None), getattr(e, 'exception', None)
        if group:
            e = group[-1]
        elif isinstance(wrapped, BaseException):
            e = wrapped
        elif e.args and isinstance(e.args[0], BaseException):
            e = e.args[0]
        else:
            break
    if isinstance(e, (pika.exceptions.ConnectionClosed, pika.exceptions.ChannelClosed)):
        return '%s %s' % (e.reply_code, e.reply_text)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


class Lost(Exception):
    """The connection (or a channel, which we treat alike) is gone; `refused` when RabbitMQ
    closed a channel over something we asked for."""

    def __init__(self, reason: str, refused: bool = False):
        super().__init__(reason)
        self.refused = refused


class Session(Protocol):
    """What the owner greenlet does with each connection (AmqpEvents: its publisher and consumer)."""

    def opened(self) -> None:
        """Connected: declare, open channels, consume again."""

    def turn(self) -> None:
        """After the commands of each wake-up: publish what waits."""

    def dropped(self) -> None:
        """The connection is gone: forget what it held, send again what it did not confirm."""

    def down(self, error: FannodeError) -> None:
        """Not connected: fail what waits for a connection to start."""

    def in_use(self, channel: Any) -> bool:
        """Whether we publish or consume on `channel`: losing it is losing the connection."""

    def unsent(self) -> int:
        """Events emitted and not confirmed yet."""


# (function, arguments, AsyncResult told its value or None): work for the owner greenlet
Command = tuple[Callable[..., Any], tuple[Any, ...], Any]


class Owner:
    """The connection and the greenlet that owns it, started on first use."""

    def __init__(self, params: pika.URLParameters, session: Session):
        self.params = params
        self.session = session
        self.where = '%s:%d' % (params.host, params.port)
        # How long check() and subscribe() wait for a connection: pika gives up on its own first.
        self.patience = ANSWER_TIMEOUT + params.socket_timeout + params.stack_timeout
        self.commands: collections.deque[Command] = collections.deque()
        self.conn: Any = None
        self.lost = gevent.event.Event()
        self.lost_reason = ''
        self.wake = gevent.event.Event()
        self.up = gevent.event.Event()     # connected
        self.tried = gevent.event.Event()  # a first connection attempt has ended, either way
        self.stopping = gevent.event.Event()
        self.last_error = ''
        self.greenlet: gevent.Greenlet | None = None

    # -- called from other greenlets ---------------------------------------------------

    def check(self) -> None:
        self.kick()
        self.tried.wait(self.patience)
        if not self.up.is_set():
            raise RegistryUnavailable('cannot reach RabbitMQ at %s: %s'
                                      % (self.where, self.last_error or 'no answer'))

    def kick(self) -> None:
        if self.greenlet is None and not self.stopping.is_set():
            self.greenlet = gevent.spawn(self._run)
        self.wake.set()

    def command(self, fn: Callable[..., Any], *args: Any) -> None:
        self.commands.append((fn, args, None))
        self.kick()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.greenlet is not None:
            self.greenlet.join(timeout=2.0)
            self.greenlet.kill(block=False)

    # -- pika callbacks, on the hub: no pika calls here --------------------------------

    def on_lost(self, lost: gevent.event.Event, exc: BaseException) -> None:
        """`lost` is the event of the connection this is about: an old one's cannot stop a new one."""
        if not lost.is_set():
            self.lost_reason = reason(exc)
            lost.set()
            self.wake.set()

    def _on_channel_closed(self, lost: gevent.event.Event, closed: gevent.event.AsyncResult, channel: Any,
                           exc: BaseException) -> None:
        if isinstance(exc, pika.exceptions.ChannelClosedByClient):
            return
        closed.set(exc)
        # The publishing channel or a consuming one: start over on a new connection. A
        # channel still being set up only fails that setup (see Consumer.start).
        if self.session.in_use(channel):
            self.on_lost(lost, exc)

    # -- the owner greenlet: every other pika call ------------------------------------

    def _run(self) -> None:
        pause, down_since = 0.1, None
        while not self.stopping.is_set():
            try:
                self._connect()
                self.up.set()
                self.tried.set()
                if down_since is not None:
                    log.info('connected to RabbitMQ at %s again after %.1fs', self.where,
                             time.monotonic() - down_since)
                pause, down_since = 0.1, None
                self._serve()
            except Exception as e:
                self.last_error = reason(e)
                if not isinstance(e, (Lost, pika.exceptions.AMQPError)):
                    log.exception('RabbitMQ connection to %s failed', self.where)  # a bug of ours
            finally:
                was_up = self.up.is_set()
                self._drop()
            if self.stopping.is_set():
                break
            self.session.down(RegistryUnavailable('cannot reach RabbitMQ at %s: %s'
                                                  % (self.where, self.last_error)))
            if was_up:
                down_since = time.monotonic()
                log.warning('lost the connection to RabbitMQ at %s: %s; reconnecting (%d event(s) '
                            'waiting to be sent)', self.where, self.last_error, self.session.unsent())
            elif down_since is None:  # never up: check() or subscribe() tell the caller
                down_since = time.monotonic()
                log.info('cannot reach RabbitMQ at %s: %s; trying again', self.where, self.last_error)
            self.tried.set()
            self.stopping.wait(pause)
            pause = min(pause * 2, MAX_PAUSE)

    def _connect(self) -> None:
        self.lost = lost = gevent.event.Event()  # callbacks of a connection only ever set its own
        opened = gevent.event.AsyncResult()
        self.conn = BatchingConnection(
            self.params, on_open_callback=opened.set,
            on_open_error_callback=lambda conn, e: opened.set_exception(e),
            on_close_callback=lambda conn, e: self.on_lost(lost, e), custom_ioloop=_io_services())
        opened.wait(self.patience)
        if not opened.ready():
            raise Lost('no answer')
        if opened.exception is not None:
            raise Lost(reason(opened.exception))
        self.session.opened()

    def _serve(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            self.raise_if_lost()
            while self.commands:
                fn, args, done = self.commands.popleft()
                try:
                    value = fn(*args)
                except BaseException as e:
                    if done is not None:
                        done.set_exception(e)
                    raise
                if done is not None:
                    done.set(value)
            self.session.turn()
            if self.stopping.is_set():
                if not (self.conn.is_closing or self.conn.is_closed):
                    self.conn.close()
                self.lost.wait(2.0)
                return

    def _drop(self) -> None:
        """After a connection: what it held comes back from RabbitMQ, or goes out again."""
        conn, self.conn = self.conn, None
        self.up.clear()
        if conn is not None and not (conn.is_closed or conn.is_closing):
            try:
                conn.close()
            except pika.exceptions.AMQPError:
                pass
        self.session.dropped()
        while self.commands:  # acks and such for this connection's deliveries: moot now
            _, _, done = self.commands.popleft()
            if done is not None:
                done.set(None)

    def raise_if_lost(self) -> None:
        if self.lost.is_set():
            raise Lost(self.lost_reason)

    def sync(self, start: Callable[[Callable[[Any], None]], Any],
             closed: gevent.event.AsyncResult | None = None) -> Any:
        """Start one pika operation that answers through a callback, and wait for the answer
        (or for the connection, or the channel `closed` tells of, to go)."""
        done = gevent.event.AsyncResult()
        start(done.set)
        gevent.wait([done, self.lost] + ([closed] if closed is not None else []),
                    timeout=ANSWER_TIMEOUT, count=1)
        if done.ready():
            return done.get()
        if closed is not None and closed.ready():
            raise Lost(reason(closed.get()), refused=True)
        self.raise_if_lost()
        raise Lost('RabbitMQ did not answer within %gs' % ANSWER_TIMEOUT)

    def channel(self) -> tuple[Any, gevent.event.AsyncResult]:
        """A new channel, and what closes it if RabbitMQ does."""
        closed = gevent.event.AsyncResult()
        channel = self.sync(lambda cb: self.conn.channel(on_open_callback=cb))
        channel.add_on_close_callback(functools.partial(self._on_channel_closed, self.lost, closed))
        return channel, closed
