"""One DEALER socket to one endpoint, and the calls waiting on it.

Sockets here are plain pyzmq sockets read from the gevent loop: one io watcher on each
socket's ZMQ_FD drains it in a loop callback. That costs far less per message than
zmq.green and a receiver greenlet. Loop callbacks must never block, so anything that
may (the on_notify callback) runs in a greenlet.

The server at the other end may be broken or hostile: a reply that cannot be read fails
the one call it answers (BadReply), never the connection's reader, and bad frames are
logged once, not once each.
"""
from __future__ import annotations

import collections
import itertools
import logging
import time
from typing import Any, Callable

import gevent
import gevent.event
import zmq
import zmq.green
from gevent.hub import Waiter

from fannode.core import wire
from fannode.core.limits import setting
from fannode.zmqrpc.badframes import BadFrames
from fannode.zmqrpc.sockets import NOBLOCK, has_input, monitor_event, plain_socket, shared_context, wake, watch
from fannode.exceptions import (
    NACK_CODES, BadReply, BadRequest, ConnectionLost, DeadlineExceeded, RemoteError, RpcError, Timeout,
)

# shared_context: callers take it from here, with the Connection they make on it.
__all__ = ['Call', 'Connection', 'encode_request', 'shared_context']

log = logging.getLogger(__name__)

# Classes made for remote error types (RemoteError.KeyError...); past this many, errors
# of new types arrive as plain RemoteError. A server naming a new type in every reply
# would otherwise make this process keep a class for each.
MAX_REMOTE_TYPES = setting('FANNODE_MAX_REMOTE_TYPES', 1000, 1)

# ZMTP heartbeats find a peer that vanished without closing its socket (host down,
# cable out); a killed process is seen at once because its kernel resets the connection.
HEARTBEAT_IVL_MS = 500
HEARTBEAT_TIMEOUT_MS = 2000

_monitors = itertools.count(1)
_REPLIES = (wire.REP, wire.NACK, wire.ERROR, None)  # None: a frame whose type was unreadable


def encode_request(msg: wire.Message) -> bytes:
    """The frame of a request, or why it cannot be sent, raised before anything is."""
    try:
        return msg.encode()
    except TypeError as e:
        raise TypeError('%s: cannot send the arguments: %s' % (msg.subject, e)) from None
    except ValueError as e:  # a limit: the server would refuse it, say so now
        raise BadRequest('%s: cannot send the request: %s' % (msg.subject, e)).as_received() from None


class Call:
    """A call in flight: the future that `.defer()` returns.

    Its waiters are bare gevent Waiters, not an AsyncResult: a reply read in the loop
    switches straight to the greenlet waiting for it, rather than scheduling a callback
    that does so on the next turn of the loop."""

    __slots__ = ('subject', 'id', 'deadline', 'timeout', 'endpoint', '_done', '_value', '_exc', '_waiters')

    def __init__(self, subject: str, id: int, timeout: float):
        self.subject = subject
        self.id = id
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.endpoint = ''
        self._done = False
        self._value: Any = None
        self._exc: BaseException | None = None
        self._waiters: list[Waiter] | None = None

    def ready(self) -> bool:
        return self._done

    def get(self, timeout: float | None = None) -> Any:
        """The reply, or raise what the call ended with. Waits no longer than the call's
        own deadline, nor than `timeout` when given."""
        if not self._done:
            if timeout is None and self.endpoint:
                self._wait(None)  # sent: its connection fails it at the deadline, so no timer per call
            else:
                wait = max(0.0, self.deadline - time.monotonic())
                if timeout is not None:
                    wait = min(wait, timeout)
                if not self._wait(wait):
                    if time.monotonic() < self.deadline:
                        raise Timeout('%s: no reply yet after %gs' % (self.subject, wait))
                    self.fail(self.timed_out())
        if self._exc is not None:
            raise self._exc
        return self._value

    def _wait(self, seconds: float | None) -> bool:
        """Wait until the call ends (True) or `seconds` pass (False)."""
        waiter = Waiter()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        timer = None
        if seconds is not None:
            timer = gevent.get_hub().loop.timer(seconds)
            timer.start(waiter.switch, False, update=True)  # from now, not the loop's last clock reading
        try:
            return bool(waiter.get())
        finally:
            if timer is not None:
                timer.close()
            if self._waiters is not None and waiter in self._waiters:  # timed out, or killed
                self._waiters.remove(waiter)

    def timed_out(self) -> DeadlineExceeded:
        return DeadlineExceeded('%s: no reply within %gs%s' % (
            self.subject, self.timeout, ' from ' + self.endpoint if self.endpoint else ''))

    def resolve(self, msg: wire.Message) -> None:
        """End the call with the reply `msg`; always ends it, a bad reply with BadReply."""
        if self._done:  # already failed (its deadline passed): the first outcome stands
            return
        if msg.type == wire.REP:
            self._end(msg.body, None)
            return
        try:
            if msg.type == wire.ERROR:
                exc: Exception = _remote_error(msg.body, self.subject)
            elif msg.type == wire.NACK:
                exc = _refusal(msg.body)
            else:
                raise ValueError('a %s is no reply' % wire.TYPE_NAMES[msg.type])
        except ValueError as e:
            exc = BadReply('%s: bad %s reply%s: %s' % (
                self.subject, wire.TYPE_NAMES[msg.type], ' from ' + self.endpoint if self.endpoint else '', e))
        self._end(None, exc)

    def succeed(self, value: Any) -> None:
        """Answer the call here (test doubles): as if `value` had come back."""
        if not self._done:
            self._end(value, None)

    def fail(self, exc: BaseException) -> None:
        if not self._done:
            self._end(None, exc)

    def _end(self, value: Any, exc: BaseException | None) -> None:
        self._done, self._value, self._exc = True, value, exc
        self._ended()
        waiters, self._waiters = self._waiters, None
        if waiters:
            hub = gevent.get_hub()
            if gevent.getcurrent() is hub:  # read in the loop: run the waiter now
                for waiter in waiters:
                    waiter.switch(True)
            else:  # ended by a greenlet (a local call's worker, a sweep): the loop wakes them
                for waiter in waiters:
                    hub.loop.run_callback(waiter.switch, True)

    def _ended(self) -> None:
        """Subclasses: what must follow the outcome before anyone waiting for it runs."""

    def __repr__(self) -> str:
        return '<Call %s #%s>' % (self.subject, self.id)


def _remote_error(body: Any, subject: str) -> RemoteError:
    if type(body) is not dict:
        raise ValueError('expected a map, got %s' % wire.describe(body))
    name = body.get('type')
    if type(name) is not str or len(name) > wire.MAX_SUBJECT \
            or not all(part.isidentifier() for part in name.split('.')):
        raise ValueError("'type': expected a dotted Python name of up to %d characters" % wire.MAX_SUBJECT)
    for key in ('message', 'traceback'):
        if type(body.get(key, '')) is not str:
            raise ValueError("'%s': expected a string, got %s" % (key, wire.describe(body[key])))
    return RemoteError.from_reply(body, subject, MAX_REMOTE_TYPES)


def _refusal(body: Any) -> RpcError:
    if type(body) is not dict:
        raise ValueError('expected a map, got %s' % wire.describe(body))
    code, message = body.get('code'), body.get('message', '')
    if type(code) is not str or type(message) is not str:
        raise ValueError("expected the strings 'code' and 'message'")
    if code == DeadlineExceeded.code:  # not run: it waited past its deadline (not a Nack)
        return DeadlineExceeded(message or code)
    cls = NACK_CODES.get(code, NACK_CODES['nack'])  # a code from a later version: a refusal all the same
    return cls(message or code).as_received()


class Connection:
    """Sends frames to one endpoint and resolves the calls answered through it.

    A send is refused while the connection is not up (before the handshake, after a
    disconnect), so the caller can pick another instance at once. We track that from
    the socket monitor rather than with ZMQ_IMMEDIATE, which discards replies that
    arrived just before the peer closed (an instance that drained and stopped).
    """

    def __init__(self, context: zmq.Context, endpoint: str,
                 on_notify: Callable[[wire.Message], None] | None = None,
                 heartbeat_ms: tuple[int, int] = (HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS)):
        """`heartbeat_ms`: ZMTP heartbeat interval and timeout (a caller that asks every second
        and times out on its own, as `fannode top`, needs few)."""
        self.endpoint = endpoint
        self.pending: dict[int, Call] = {}
        self.on_notify = on_notify
        self._up = gevent.event.Event()
        self.was_up = False  # it connected once: down now means the peer went, not "still connecting"
        self._notices: collections.deque[wire.Message] = collections.deque()
        self._notifier: gevent.Greenlet | None = None
        self._timer: Any = None  # fires at the earliest deadline of the pending calls
        self._due = 0.0
        self.bad_frames = BadFrames(log, 'bad frame')
        self._reading = False  # in _read, which checks for input before it returns
        self.socket = plain_socket(context, zmq.DEALER)
        for opt, value in ((zmq.LINGER, 0), (zmq.RECONNECT_IVL, 100),
                           (zmq.RECONNECT_IVL_MAX, 1000), (zmq.HEARTBEAT_IVL, heartbeat_ms[0]),
                           (zmq.HEARTBEAT_TIMEOUT, heartbeat_ms[1])):
            self.socket.setsockopt(opt, value)
        address = 'inproc://fannode-monitor-%d' % next(_monitors)
        self.socket.monitor(address, zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        self.monitor = plain_socket(context, zmq.PAIR)
        self.monitor.connect(address)
        self._watchers = [watch(self.socket, self._read), watch(self.monitor, self._watch)]
        try:
            self.socket.connect(endpoint)
        except zmq.ZMQError as e:  # endpoints come from the registry: anyone may have written one
            self.close()
            raise ValueError('bad endpoint %r: %s' % (endpoint[:100], e)) from None

    def send(self, frame: bytes, call: Call | None = None) -> bool:
        """Send without blocking; False when the connection is not up."""
        if not self._up.is_set():
            return False
        try:
            self.socket.send(frame, NOBLOCK)
        except zmq.Again:
            return False
        if call is not None:
            call.endpoint = self.endpoint
            self.pending[call.id] = call
            if self._timer is None or call.deadline < self._due:
                self._arm(call.deadline)
        if not self._reading:  # else a caller woken by _read sends: its loop checks for input next
            wake(self.socket, self._read)
        return True

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    def expire(self, now: float) -> None:
        """Fail the calls whose deadline has passed, whether anyone waits for them or not."""
        for call in [c for c in self.pending.values() if c.deadline < now]:
            self.pending.pop(call.id, None)
            call.fail(call.timed_out())

    def close(self) -> None:
        for watcher in self._watchers:
            watcher.close()
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if self._notifier is not None:
            self._notifier.kill(block=False)
        self._fail_pending('connection to %s closed' % self.endpoint)
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close(linger=0)

    # -- in the loop: these never block ---------------------------------------------

    def _read(self) -> None:
        socket = self.socket
        reading, self._reading = self._reading, True
        try:
            while not socket.closed and has_input(socket):
                frame = socket.recv(NOBLOCK, copy=False)  # read in place: no copy, no RCVMORE asked
                extra = len(socket.recv_multipart(NOBLOCK)) if frame.more else 0
                try:
                    if extra:
                        self._bad('%d frames in one message, expected 1' % (1 + extra))
                    else:
                        self._handle(frame.buffer)
                except Exception:  # an error here would stop the watcher: read on
                    log.exception('dropped a frame from %s', self.endpoint)
        finally:
            self._reading = reading

    def _handle(self, frame: bytes | memoryview) -> None:
        try:
            msg = wire.decode(frame)
        except wire.ProtocolError as e:
            self._bad(str(e))
            if e.id is not None and e.type in _REPLIES:  # its call learns why, at once
                call = self.pending.pop(e.id, None)
                if call is not None:
                    call.fail(BadReply('%s: bad reply from %s: %s' % (call.subject, self.endpoint, e)))
            return
        if msg.type == wire.NOTIFY:
            if self.on_notify is not None:
                self._notices.append(msg)
                if self._notifier is None:
                    self._notifier = gevent.spawn(self._notify)
        elif msg.type in _REPLIES:
            call = self.pending.pop(msg.id, None)
            if call is not None:
                call.resolve(msg)
        elif msg.type == wire.REQ:
            self._bad('a request: servers do not send those')

    def _bad(self, reason: str) -> None:
        self.bad_frames.warn(self.endpoint, self.endpoint, reason)

    def _watch(self) -> None:
        monitor = self.monitor
        while not monitor.closed and has_input(monitor):
            event = monitor_event(monitor.recv_multipart(NOBLOCK))
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._up.set()
                self.was_up = True
            elif event == zmq.EVENT_DISCONNECTED:
                self._up.clear()
                # Replies the peer sent before leaving may still wait in the socket:
                # take them first; the rest can never arrive.
                self._read()
                self._fail_pending('%s went away before replying' % self.endpoint)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.close()
        self._due = deadline
        self._timer = gevent.get_hub().loop.timer(max(0.0, deadline - time.monotonic()))
        self._timer.start(self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer.close()
        self._timer = None
        self.expire(time.monotonic())
        if self.pending:
            self._arm(min(c.deadline for c in self.pending.values()))

    def _fail_pending(self, reason: str) -> None:
        pending, self.pending = self.pending, {}
        for call in pending.values():
            call.fail(ConnectionLost('%s: %s' % (call.subject, reason)))

    # -- in a greenlet ---------------------------------------------------------------

    def _notify(self) -> None:
        """Hand notifications to on_notify in order; it may block or make calls."""
        on_notify = self.on_notify
        assert on_notify is not None  # notices are only queued for it
        try:
            while self._notices:
                msg = self._notices.popleft()
                try:
                    on_notify(msg)
                except Exception:
                    log.exception('handling %s from %s failed', msg.subject, self.endpoint)
        finally:
            self._notifier = None
