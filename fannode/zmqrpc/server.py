"""The serving side: a ROUTER socket, a greenlet per request from a bounded pool."""
from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Callable

import gevent
import gevent.pool
import zmq.green as zmq

from fannode.core import trace
from fannode.exceptions import BadRequest, Nack, Unavailable
from fannode.zmqrpc import protocol

log = logging.getLogger(__name__)

# resolve(identity, message) -> a callable taking no arguments, or raise Nack at once.
Resolver = Callable[[bytes, protocol.Message], Callable[[], Any]]
# on_done(subject, seconds, error) after every request that ran.
Recorder = Callable[[str, float, bool], None]


class RpcServer:
    def __init__(self, resolve: Resolver, context: zmq.Context | None = None,
                 pool_size: int = 1000, on_done: Recorder | None = None,
                 expected: Callable[[BaseException, str], bool] | None = None):
        self.resolve = resolve
        self.context = context or zmq.Context.instance()
        self.pool = gevent.pool.Pool(pool_size)
        self.on_done = on_done
        self.expected = expected or (lambda exc, subject: False)
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.endpoint = ''
        self.stopping = False
        self._receiver: gevent.Greenlet | None = None

    def bind(self, ip: str = '127.0.0.1', port: int = 0) -> str:
        if port:
            self.socket.bind('tcp://%s:%d' % (ip, port))
        else:
            port = self.socket.bind_to_random_port('tcp://%s' % ip)
        self.endpoint = 'tcp://%s:%d' % (ip, port)
        return self.endpoint

    def start(self) -> None:
        self._receiver = gevent.spawn(self._receive)

    def push(self, identity: bytes, subject: str, body: Any) -> None:
        """An unsolicited NOTIFY to one connected client."""
        self._send(identity, protocol.Message(protocol.NOTIFY, 0, subject, body))

    def in_flight(self) -> int:
        return len(self.pool)

    def drain(self, timeout: float) -> bool:
        """Refuse new requests (NACK, so callers retry elsewhere) and wait for running ones."""
        self.stopping = True
        return self.pool.join(timeout=timeout)

    def close(self, linger: float = 1.0) -> None:
        """Stop serving. Replies already sent get `linger` seconds to leave the socket,
        so a drained request's answer is not dropped on the way out."""
        if self._receiver is not None:
            self._receiver.kill(block=False)
        self.pool.kill(block=False)
        self.socket.close(linger=int(linger * 1000))

    def _receive(self) -> None:
        while True:
            frames = self.socket.recv_multipart()
            if len(frames) != 2:
                continue
            identity, frame = frames
            try:
                msg = protocol.decode(frame)
            except protocol.ProtocolError as e:
                log.warning('dropped a bad request frame: %s', e)
                if e.id is not None:
                    self._send(identity, protocol.Message(
                        protocol.NACK, e.id, e.subject, {'code': BadRequest.code, 'message': str(e)}))
                continue
            if msg.type != protocol.REQ:
                continue
            try:
                if self.stopping:
                    raise Unavailable('instance is stopping')
                func = self.resolve(identity, msg)
            except Nack as e:
                self._send(identity, msg.reply(protocol.NACK, {'code': e.code, 'message': str(e)}))
                continue
            if msg.headers.get('ack'):
                self._send(identity, msg.reply(protocol.ACK))
            deadline = time.monotonic() + msg.deadline_ms / 1000.0 if msg.deadline_ms else 0.0
            self.pool.spawn(self._run, identity, msg, func, deadline)

    def _run(self, identity: bytes, msg: protocol.Message, func: Callable[[], Any],
             deadline: float) -> None:
        start = time.monotonic()
        if deadline and start > deadline:
            return  # waited in the pool past the caller's deadline: nobody reads the reply
        trace.set_id(msg.trace_id or trace.new_id())
        error = False
        try:
            reply = msg.reply(protocol.REP, func())
        except Nack as e:
            reply = msg.reply(protocol.NACK, {'code': e.code, 'message': str(e)})
        except Exception as e:
            error = True
            reply = msg.reply(protocol.ERROR, error_body(e))
            if self.expected(e, msg.subject):
                log.info('%s raised %s: %s', msg.subject, type(e).__name__, e)
            else:
                log.exception('%s failed', msg.subject)
        try:
            self._send(identity, reply)
        except TypeError as e:  # the method returned something msgpack cannot carry
            error = True
            self._send(identity, msg.reply(protocol.ERROR, {
                'type': 'TypeError', 'message': 'cannot send the reply of %s: %s' % (msg.subject, e)}))
        if self.on_done is not None:
            self.on_done(msg.subject, time.monotonic() - start, error)

    def _send(self, identity: bytes, msg: protocol.Message) -> None:
        # A ROUTER send never blocks (it drops on a full pipe), so frames from
        # different greenlets cannot interleave.
        self.socket.send_multipart([identity, msg.encode()])


def error_body(exc: BaseException) -> dict[str, str]:
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == 'builtins' else '%s.%s' % (cls.__module__, cls.__qualname__)
    return {'type': name, 'message': str(exc),
            'traceback': ''.join(traceback.format_exception(exc))}
