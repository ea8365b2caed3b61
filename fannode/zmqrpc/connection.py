"""One DEALER socket to one endpoint, and the calls waiting on it."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import gevent
import gevent.event
import zmq.green as zmq
from zmq.utils.monitor import recv_monitor_message

from fannode.exceptions import (
    NACK_CODES, ConnectionLost, Nack, RemoteError, Timeout,
)
from fannode.zmqrpc import protocol

log = logging.getLogger(__name__)

# ZMTP heartbeats find a peer that vanished without closing its socket (host down,
# cable out); a killed process is seen at once because its kernel resets the connection.
HEARTBEAT_IVL_MS = 500
HEARTBEAT_TIMEOUT_MS = 2000


class Call:
    """A call in flight: the future that `.defer()` returns."""

    __slots__ = ('subject', 'id', 'deadline', 'timeout', 'endpoint', '_result')

    def __init__(self, subject: str, id: int, timeout: float):
        self.subject = subject
        self.id = id
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.endpoint = ''
        self._result = gevent.event.AsyncResult()

    def ready(self) -> bool:
        return self._result.ready()

    def get(self, timeout: float | None = None) -> Any:
        """The reply, or raise what the call ended with. Waits no longer than the call's
        own deadline, nor than `timeout` when given."""
        wait = max(0.0, self.deadline - time.monotonic())
        if timeout is not None:
            wait = min(wait, timeout)
        try:
            return self._result.get(timeout=wait)
        except gevent.Timeout:
            if time.monotonic() >= self.deadline:
                self.fail(Timeout('%s: no reply within %gs%s' % (
                    self.subject, self.timeout, ' from ' + self.endpoint if self.endpoint else '')))
                return self._result.get()
            raise Timeout('%s: no reply yet after %gs' % (self.subject, timeout)) from None

    def resolve(self, msg: protocol.Message) -> None:
        if msg.type == protocol.REP:
            self._result.set(msg.body)
        elif msg.type == protocol.ERROR:
            self._result.set_exception(RemoteError.from_reply(msg.body or {}, self.subject))
        elif msg.type == protocol.NACK:
            body = msg.body or {}
            cls = NACK_CODES.get(body.get('code'), Nack)
            self._result.set_exception(cls(body.get('message') or cls.code))

    def fail(self, exc: Exception) -> None:
        if not self._result.ready():
            self._result.set_exception(exc)

    def __repr__(self) -> str:
        return '<Call %s #%s>' % (self.subject, self.id)


class Connection:
    """Sends frames to one endpoint and resolves the calls answered through it.

    A send is refused while the connection is not up (before the handshake, after a
    disconnect), so the caller can pick another instance at once. We track that from
    the socket monitor rather than with ZMQ_IMMEDIATE, which discards replies that
    arrived just before the peer closed (an instance that drained and stopped).
    """

    def __init__(self, context: zmq.Context, endpoint: str,
                 on_notify: Callable[[protocol.Message], None] | None = None):
        self.endpoint = endpoint
        self.pending: dict[int, Call] = {}
        self.on_notify = on_notify
        self._up = gevent.event.Event()
        self.socket = context.socket(zmq.DEALER)
        for opt, value in ((zmq.LINGER, 0), (zmq.RECONNECT_IVL, 100),
                           (zmq.RECONNECT_IVL_MAX, 1000), (zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS),
                           (zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)):
            self.socket.setsockopt(opt, value)
        self.monitor = self.socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        self.socket.connect(endpoint)
        self._greenlets = [gevent.spawn(self._receive), gevent.spawn(self._watch)]

    def send(self, frame: bytes, call: Call | None = None) -> bool:
        """Send without blocking; False when the connection is not up."""
        if not self._up.is_set():
            return False
        try:
            self.socket.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            return False
        if call is not None:
            call.endpoint = self.endpoint
            self.pending[call.id] = call
        return True

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    def expire(self, now: float) -> None:
        """Drop calls nobody waits for any more (deferred and never read)."""
        for call in [c for c in self.pending.values() if c.deadline < now]:
            self.pending.pop(call.id, None)
            call.fail(Timeout('%s: no reply within %gs from %s' % (call.subject, call.timeout, self.endpoint)))

    def close(self) -> None:
        gevent.killall(self._greenlets, block=False)
        self._fail_pending('connection to %s closed' % self.endpoint)
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close(linger=0)

    def _receive(self) -> None:
        while True:
            self._handle(self.socket.recv())

    def _handle(self, frame: bytes) -> None:
        try:
            msg = protocol.decode(frame)
        except protocol.ProtocolError as e:
            log.warning('dropped a bad frame from %s: %s', self.endpoint, e)
            return
        if msg.type == protocol.NOTIFY:
            if self.on_notify is not None:
                self.on_notify(msg)
            return
        call = self.pending.pop(msg.id, None) if msg.type != protocol.ACK else None
        if call is not None:
            call.resolve(msg)

    def _watch(self) -> None:
        while True:
            event = recv_monitor_message(self.monitor)['event']
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._up.set()
            elif event == zmq.EVENT_DISCONNECTED:
                self._up.clear()
                # Replies the peer sent before leaving may still wait in the socket:
                # take them first; the rest can never arrive.
                while True:
                    try:
                        self._handle(self.socket.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                self._fail_pending('%s went away before replying' % self.endpoint)

    def _fail_pending(self, reason: str) -> None:
        pending, self.pending = self.pending, {}
        for call in pending.values():
            call.fail(ConnectionLost('%s: %s' % (call.subject, reason)))
