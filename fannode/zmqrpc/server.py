"""The serving side: a ROUTER socket read from the gevent loop, requests run by
long-lived worker greenlets, at most `pool_size` at once."""
from __future__ import annotations

import contextvars
import logging
import time
import traceback
from typing import Any, Callable

import gevent
import gevent.event
import zmq
from gevent.hub import Waiter

from fannode.core import trace
from fannode.exceptions import BadRequest, Nack, Unavailable
from fannode.core import wire
from fannode.zmqrpc.connection import (
    NOBLOCK, SNDMORE, has_input, plain_socket, shared_context, wake, watch,
)

log = logging.getLogger(__name__)

# resolve(identity, message) -> a callable taking no arguments, or raise Nack at once.
Resolver = Callable[[bytes, wire.Message], Callable[[], Any]]
# on_done(subject, seconds, error) after every request that ran.
Recorder = Callable[[str, float, bool], None]

MAX_IDLE = 64  # idle workers kept for the next requests; the others end


class RpcServer:
    def __init__(self, resolve: Resolver, context: zmq.Context | None = None,
                 pool_size: int = 1000, on_done: Recorder | None = None,
                 expected: Callable[[BaseException, str], bool] | None = None,
                 quiet: Callable[[str], bool] | None = None):
        self.resolve = resolve
        # Subjects that make no span and are not recorded: the built-in methods `top` and
        # health checks poll every second would drown the service's own traffic.
        self.quiet = quiet or (lambda subject: False)
        self.context = context or shared_context()
        self.workers = Workers(pool_size, self._resume)
        self.on_done = on_done
        self.expected = expected or (lambda exc, subject: False)
        self.socket = plain_socket(self.context, zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.endpoint = ''
        self.stopping = False
        self._watcher: Any = None
        self._reading = False
        self._held = False  # every worker was busy: requests wait in the socket

    def bind(self, ip: str = '127.0.0.1', port: int = 0) -> str:
        if port:
            self.socket.bind('tcp://%s:%d' % (ip, port))
        else:
            port = self.socket.bind_to_random_port('tcp://%s' % ip)
        self.endpoint = 'tcp://%s:%d' % (ip, port)
        return self.endpoint

    def start(self) -> None:
        self._watcher = watch(self.socket, self._read)

    def push(self, identity: bytes, subject: str, body: Any) -> None:
        """An unsolicited NOTIFY to one connected client."""
        self._send(identity, wire.Message(wire.NOTIFY, 0, subject, body))

    def in_flight(self) -> int:
        return self.workers.running

    def drain(self, timeout: float) -> bool:
        """Refuse new requests (NACK, so callers retry elsewhere) and wait for running ones."""
        self.stopping = True
        return self.workers.wait(timeout)

    def close(self, linger: float = 1.0) -> None:
        """Stop serving. Replies already sent get `linger` seconds to leave the socket,
        so a drained request's answer is not dropped on the way out."""
        if self._watcher is not None:
            self._watcher.close()
        self.workers.kill()
        self.socket.close(linger=int(linger * 1000))

    # -- in the loop: these never block ---------------------------------------------

    def _read(self) -> None:
        socket = self.socket
        self._reading = True
        try:
            while not socket.closed and has_input(socket):
                if self.workers.full:
                    self._held = True  # read on when a worker is free
                    return
                frames = socket.recv_multipart(NOBLOCK)
                if len(frames) != 2:
                    continue
                try:
                    self._accept(*frames)
                except Exception:  # an error here would stop the watcher: serve on
                    log.exception('dropped a request: accepting it failed')
        finally:
            self._reading = False

    def _resume(self) -> None:
        if self._held:
            self._held = False
            gevent.get_hub().loop.run_callback(self._read)

    def _accept(self, identity: bytes, frame: bytes) -> None:
        try:
            msg = wire.decode(frame)
        except wire.ProtocolError as e:
            log.warning('dropped a bad request frame: %s', e)
            if e.id is not None:
                self._send(identity, wire.Message(
                    wire.NACK, e.id, e.subject, {'code': BadRequest.code, 'message': str(e)}))
            return
        if msg.type != wire.REQ:
            return
        try:
            if self.stopping:
                raise Unavailable('instance is stopping')
            func = self.resolve(identity, msg)
        except Nack as e:
            self._send(identity, msg.reply(wire.NACK, {'code': e.code, 'message': str(e)}))
            return
        if msg.headers.get('ack'):
            self._send(identity, msg.reply(wire.ACK))
        deadline = time.monotonic() + msg.deadline_ms / 1000.0 if msg.deadline_ms else 0.0
        self.workers.submit(self._run, identity, msg, func, deadline)

    # -- in a worker -----------------------------------------------------------------

    def _run(self, identity: bytes, msg: wire.Message, func: Callable[[], Any],
             deadline: float) -> None:
        if deadline and time.monotonic() > deadline:
            return  # waited past the caller's deadline: nobody reads the reply
        span = trace.begin(msg.trace_id, msg.span_id)  # the caller's span is our parent
        error = False
        try:
            reply = msg.reply(wire.REP, func())
        except Nack as e:
            if not e.received:  # refused by this server's own method (the hub does)
                reply = msg.reply(wire.NACK, {'code': e.code, 'message': str(e)})
            else:
                error = True
                reply = msg.reply(wire.ERROR, error_body(e))
                log.warning('%s failed: %s: %s', msg.subject, type(e).__name__, e)
        except Exception as e:
            error = True
            reply = msg.reply(wire.ERROR, error_body(e))
            if self.expected(e, msg.subject):
                log.info('%s raised %s: %s', msg.subject, type(e).__name__, e)
            else:
                log.exception('%s failed', msg.subject)
        try:
            if not msg.headers.get('oneway'):
                self._send(identity, reply)
        except TypeError as e:  # the method returned something msgpack cannot carry
            error = True
            self._send(identity, msg.reply(wire.ERROR, {
                'type': 'TypeError', 'message': 'cannot send the reply of %s: %s' % (msg.subject, e)}))
        quiet = self.quiet(msg.subject)
        seconds = span.end('rpc', msg.subject, 'error' if error else 'ok', report=not quiet)
        if self.on_done is not None and not quiet:
            self.on_done(msg.subject, seconds, error)

    def _send(self, identity: bytes, msg: wire.Message) -> None:
        frame = msg.encode()  # first: a TypeError here must not leave half a message sent
        socket = self.socket
        try:
            socket.send(identity, SNDMORE | NOBLOCK)
            socket.send(frame, NOBLOCK)
        except zmq.ZMQError as e:
            # A ROUTER drops what it cannot deliver (a full pipe, a peer gone); so do we.
            if e.errno not in (zmq.EAGAIN, zmq.EHOSTUNREACH):
                raise
            log.debug('dropped %r: %s', msg, e)
        if not self._reading:
            wake(socket, self._read)


class Workers:
    """Greenlets that run jobs, at most `size` at once, each job in a fresh contextvars
    context. They are reused: a new greenlet per request maps and unmaps a stack."""

    def __init__(self, size: int, on_free: Callable[[], None]):
        self.size = size
        self.running = 0
        self.on_free = on_free
        self._idle: list[Waiter] = []
        self._greenlets: set[gevent.Greenlet] = set()
        self._none_running = gevent.event.Event()
        self._none_running.set()

    @property
    def full(self) -> bool:
        return self.running >= self.size

    def submit(self, func: Callable[..., None], *args: Any) -> None:
        """Start `func(*args)`; from the loop only (an idle worker is switched to directly)."""
        self.running += 1
        self._none_running.clear()
        if self._idle:
            self._idle.pop().switch((func, args))  # runs it now, until it waits or ends
        else:
            self._greenlets.add(gevent.spawn(self._work, (func, args)))

    def wait(self, timeout: float) -> bool:
        return self._none_running.wait(timeout)

    def kill(self) -> None:
        self._idle.clear()
        gevent.killall(list(self._greenlets), block=False)

    def _work(self, job: tuple[Callable[..., None], tuple] | None) -> None:
        try:
            while job is not None:
                try:
                    # A fresh context per job: trace ids and the like never leak into the next.
                    contextvars.Context().run(job[0], *job[1])
                finally:
                    self.running -= 1
                    self.on_free()  # first: held requests get their NACK before a drain ends
                    if not self.running:
                        self._none_running.set()
                job = self._next()
        finally:
            self._greenlets.discard(gevent.getcurrent())

    def _next(self) -> tuple[Callable[..., None], tuple] | None:
        if len(self._idle) >= MAX_IDLE:
            return None
        waiter = Waiter()
        self._idle.append(waiter)
        return waiter.get()


def error_body(exc: BaseException) -> dict[str, str]:
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == 'builtins' else '%s.%s' % (cls.__module__, cls.__qualname__)
    return {'type': name, 'message': str(exc),
            'traceback': ''.join(traceback.format_exception(exc))}
