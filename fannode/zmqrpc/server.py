"""The serving side: a ROUTER socket read from the gevent loop, requests run by
long-lived worker greenlets, at most `pool_size` at once.

A request carries its caller's budget (deadline_ms): one that waited past it for a worker
is not run but refused (NACK deadline_exceeded), and counted; one that runs does so
under that deadline (fannode.core.deadline), so the calls it makes get what is left.

Every request gets an answer, whatever it holds: a frame that cannot be read but whose
id can is refused (NACK bad_request, naming what is wrong); a method that raises, or
returns what cannot be sent, is an ERROR. Only a frame without a readable id is dropped,
and logged once per peer. ERROR replies carry the server's traceback only when the
cluster asks for them (`$FANNODE_TRACEBACKS`, `rpc.tracebacks`; on loopback by default).
"""
from __future__ import annotations

import collections
import contextvars
import logging
import time
from typing import Any, Callable, Protocol

import gevent
import gevent.event
import zmq
from gevent.hub import Waiter

from fannode.core import current
from fannode.core import deadline as current_deadline
from fannode.core import trace
from fannode.exceptions import BadRequest, DeadlineExceeded, Nack, Unavailable
from fannode.core import wire
from fannode.zmqrpc.badframes import BadFrames
from fannode.zmqrpc.errors import error_body, is_loopback, traceback_setting
from fannode.zmqrpc.sockets import NOBLOCK, SNDMORE, has_input, plain_socket, shared_context, wake, watch

log = logging.getLogger(__name__)

# resolve(identity, message) -> a callable taking no arguments, or raise Nack at once.
Resolver = Callable[[bytes, wire.Message], Callable[[], Any]]


class Recorder(Protocol):
    """on_done(subject, seconds, error) after every request that ran; with expired=True
    for one refused because its deadline passed before it could start."""

    def __call__(self, subject: str, seconds: float, error: bool, /, *, expired: bool = False) -> None: ...


# A request read while every worker is busy waits in memory, stamped with its deadline
# (up to pool_size of them; more wait in the socket), so one whose caller gave up is
# refused rather than run late.
Queued = tuple[bytes, wire.Message, Callable[[], Any], float]

MAX_IDLE = 64  # idle workers kept for the next requests; the others end


class RpcServer:
    def __init__(self, resolve: Resolver, context: zmq.Context | None = None,
                 pool_size: int = 1000, on_done: Recorder | None = None,
                 expected: Callable[[BaseException, str], bool] | None = None,
                 quiet: Callable[[str], bool] | None = None, tracebacks: bool | None = None):
        self.resolve = resolve
        # Whether ERROR replies carry tracebacks: $FANNODE_TRACEBACKS, else what the
        # config says, else decided by the address bound (loopback: a developer's).
        self.tracebacks = traceback_setting(tracebacks)
        # Subjects that make no span and are not recorded: the built-in methods `top` and
        # health checks poll every second would drown the service's own traffic.
        self.quiet = quiet or (lambda subject: False)
        self._quiet: dict[str, bool] = {}  # quiet(subject), asked once per subject
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
        self._resuming = False
        self.queued: collections.deque[Queued] = collections.deque()
        self.bad_frames = BadFrames(log, 'bad request')

    def bind(self, ip: str = '127.0.0.1', port: int = 0) -> str:
        if port:
            self.socket.bind('tcp://%s:%d' % (ip, port))
        else:
            port = self.socket.bind_to_random_port('tcp://%s' % ip)
        self.endpoint = 'tcp://%s:%d' % (ip, port)
        if self.tracebacks is None:
            self.tracebacks = is_loopback(ip)
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
        while self.queued:  # accepted, never started: callers may retry them elsewhere too
            identity, msg, _, _ = self.queued.popleft()
            self._refuse(identity, msg, Unavailable('instance is stopping'))
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
        socket, workers = self.socket, self.workers
        self._reading = True
        try:
            while not socket.closed and has_input(socket):
                if workers.running >= workers.size and len(self.queued) >= workers.size:  # full, and so is the queue
                    self._held = True  # read on when a worker is free
                    return
                # A ROUTER hands over the peer's identity, then at least one frame. That
                # frame is read in place (copy=False): no copy of it, and no RCVMORE asked.
                identity = socket.recv(NOBLOCK)
                frame = socket.recv(NOBLOCK, copy=False)
                extra = len(socket.recv_multipart(NOBLOCK)) if frame.more else 0
                try:
                    if not extra:
                        self._accept(identity, frame.buffer)
                    else:
                        self._bad(identity, '%d frames in one message, expected 1' % (1 + extra))
                except Exception:  # an error here would stop the watcher: serve on
                    log.exception('dropped a request: accepting it failed')
        finally:
            self._reading = False

    def _resume(self) -> None:
        """A worker is free (called from it): start what waits, in the loop."""
        if (self.queued or self._held) and not self._resuming:
            self._resuming = True
            gevent.get_hub().loop.run_callback(self._on_free)

    def _on_free(self) -> None:
        self._resuming = False
        self._start_queued()
        if self._held:  # room in the queue now: read on (it holds again when full)
            self._held = False
            self._read()

    def _start_queued(self) -> None:
        """Start queued requests, oldest first, while workers are free; refuse those
        whose deadline passed while they waited."""
        queued, workers = self.queued, self.workers
        while queued and not workers.full:
            identity, msg, func, deadline = queued.popleft()
            if deadline and time.monotonic() > deadline:
                self._expired(identity, msg, deadline)
            else:
                workers.submit(self._run, identity, msg, func, deadline)

    def _accept(self, identity: bytes, frame: bytes | memoryview) -> None:
        try:
            msg = wire.decode(frame)
        except wire.ProtocolError as e:
            self._bad(identity, str(e))
            if e.id is not None and e.type in (wire.REQ, None):  # it can be told why
                self._send(identity, wire.Message(
                    wire.NACK, e.id, e.subject, {'code': BadRequest.code, 'message': str(e)}))
            return
        if msg.type != wire.REQ:
            self._bad(identity, 'a %s, not a request' % wire.TYPE_NAMES[msg.type])
            return
        try:
            if self.stopping or current.USER_HEADERS in msg.headers:  # admit's checks have work to do
                func = self.admit(msg, lambda: self.resolve(identity, msg))
            else:
                func = self.resolve(identity, msg)
        except Nack as e:
            self._refuse(identity, msg, e)
            return
        except Exception as e:  # a bug in resolving: the caller hears of it, not a timeout
            log.exception('%s: resolving the request failed', msg.subject)
            self._send(identity, msg.reply(wire.ERROR, error_body(e, bool(self.tracebacks))))
            return
        if msg.headers.get('ack'):
            self._send(identity, msg.reply(wire.ACK))
        deadline = time.monotonic() + msg.deadline_ms / 1000.0 if msg.deadline_ms else 0.0
        if self.queued or self.workers.full:
            self.queued.append((identity, msg, func, deadline))  # behind those already waiting
            self._start_queued()
        else:
            self.workers.submit(self._run, identity, msg, func, deadline)

    def _refuse(self, identity: bytes, msg: wire.Message, e: Nack | DeadlineExceeded) -> None:
        if msg.headers.get('oneway'):  # its sender reads no replies: they would pile up there
            self._bad(identity, 'refused a one-way %s: %s' % (msg.subject, e))
        else:
            self._send(identity, msg.reply(wire.NACK, {'code': e.code, 'message': str(e)}))

    def _expired(self, identity: bytes, msg: wire.Message, deadline: float) -> None:
        """Not run: its caller stopped waiting while it queued for a worker."""
        late = (time.monotonic() - deadline) * 1000
        log.debug('%s: not run, its deadline (%d ms) passed %.0f ms ago while it waited for a worker',
                  msg.subject, msg.deadline_ms, late)
        self._refuse(identity, msg, DeadlineExceeded(
            '%s: not run: its deadline (%d ms) passed %.0f ms before a worker was free'
            % (msg.subject, msg.deadline_ms, late)))
        if self.on_done is not None and not self.quiet(msg.subject):
            self.on_done(msg.subject, 0.0, True, expired=True)

    # -- in a worker -----------------------------------------------------------------

    def _run(self, identity: bytes, msg: wire.Message, func: Callable[[], Any],
             deadline: float) -> None:
        if deadline and time.monotonic() > deadline:
            self._expired(identity, msg, deadline)  # waited past the caller's deadline
            return
        oneway = msg.headers.get('oneway')
        self.serve(msg, func, deadline, lambda frame: None if oneway else self._send_frame(identity, frame))

    def admit(self, msg: wire.Message, resolve: Callable[[], Callable[[], Any]]) -> Callable[[], Any]:
        """The handler for request `msg` (`resolve()`), or a Nack: the instance is stopping,
        or its user headers are not what they may be (from the network: checked before use)."""
        if self.stopping:
            raise Unavailable('instance is stopping')
        if current.USER_HEADERS in msg.headers:
            problem = current.header_problem(msg.headers[current.USER_HEADERS], wire.MAX_HEADERS)
            if problem:
                raise BadRequest('headers.%s: %s' % (current.USER_HEADERS, problem))
        return resolve()

    def serve(self, msg: wire.Message, func: Callable[[], Any], deadline: float,
              send: Callable[[bytes], None], **span_extra: Any) -> None:
        """Run `func`, the method `msg` asks for, as its handler: in its caller's trace, under
        its deadline and with its headers; hand the reply's frame (or the error's) to `send`;
        record the span and the metrics. The one way a request is answered, over the wire or
        in the caller's process (fannode.calls.local)."""
        span = trace.begin(msg.trace_id, msg.span_id)  # the caller's span is our parent
        # Fresh context per job (Workers): no reset needed, nothing leaks to the next.
        current_deadline.set(deadline or None)
        current.incoming.set(msg.headers.get(current.USER_HEADERS) or {})  # fannode.headers()
        error = False
        tracebacks = bool(self.tracebacks)
        try:
            reply = msg.reply(wire.REP, func())
        except Nack as e:
            if not e.received:  # refused by this server's own method (the hub does)
                reply = msg.reply(wire.NACK, {'code': e.code, 'message': str(e)})
            else:
                error = True
                reply = msg.reply(wire.ERROR, error_body(e, tracebacks))
                log.warning('%s failed: %s: %s', msg.subject, type(e).__name__, e)
        except (Exception, gevent.Timeout) as e:  # gevent.Timeout is no Exception: still an answer
            error = True
            reply = msg.reply(wire.ERROR, error_body(e, tracebacks))
            if self.expected(e, msg.subject) or (isinstance(e, DeadlineExceeded) and deadline):
                log.info('%s raised %s: %s', msg.subject, type(e).__name__, e)
            else:
                log.exception('%s failed', msg.subject)
        frame, sendable = self._frame(msg, reply)
        error = error or not sendable
        send(frame)
        quiet = self._quiet.get(msg.subject)
        if quiet is None:
            quiet = self.quiet(msg.subject)
            if len(self._quiet) < 10_000:  # subjects that ran: methods the instance has
                self._quiet[msg.subject] = quiet
        if msg.deadline_ms:
            span_extra['budget_ms'] = msg.deadline_ms
        seconds = span.end('rpc', msg.subject, 'error' if error else 'ok', report=not quiet, **span_extra)
        if self.on_done is not None and not quiet:
            self.on_done(msg.subject, seconds, error)

    def _frame(self, msg: wire.Message, reply: wire.Message) -> tuple[bytes, bool]:
        """The frame of `reply`, and True; or, when the codec cannot make it (a value
        msgpack cannot carry, too big, too deep), an ERROR saying so, and False."""
        try:
            return reply.encode(), True
        except Exception as e:  # the codec's own words: short, whatever the reply held
            log.warning('%s: cannot send the reply: %s', msg.subject, e)
            return msg.reply(wire.ERROR, {
                'type': 'TypeError' if isinstance(e, TypeError) else 'ValueError',
                'message': ('cannot send the reply of %s: %s' % (msg.subject, e))[:1000]}).encode(), False

    def _bad(self, identity: bytes, reason: str) -> None:
        self.bad_frames.warn(identity, 'peer %s' % identity.hex(), reason)

    def _send(self, identity: bytes, msg: wire.Message) -> None:
        self._send_frame(identity, msg.encode())  # first: an error here must not leave half a message sent

    def _send_frame(self, identity: bytes, frame: bytes) -> None:
        socket = self.socket
        try:
            socket.send(identity, SNDMORE | NOBLOCK)
            socket.send(frame, NOBLOCK)
        except zmq.ZMQError as e:
            # A ROUTER drops what it cannot deliver (a full pipe, a peer gone); so do we.
            if e.errno not in (zmq.EAGAIN, zmq.EHOSTUNREACH):
                raise
            log.debug('dropped a frame for peer %s: %s', identity.hex(), e)
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
