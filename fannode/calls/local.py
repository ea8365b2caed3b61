"""Calls to an instance running in this same process, answered without a network hop.

Every rpc transport opens a LocalDoor beside its socket (`open`), keyed by the endpoint
it announces; the client (client.py) sends a call to an instance whose endpoint has a
door here through it instead of the socket, unless the proxy says `local=False`.

The semantics are those of the wire, on purpose, so that moving two services into one
instance changes nothing but the latency: the request and the reply are encoded and
decoded by the same codec (a tuple arrives as a list, what cannot be sent fails the
same way); the handler runs in a greenlet of its own, in a fresh context, under the
call's deadline, with the caller's trace id, a span and the user headers; its metrics
are recorded by the instance; a refusal arrives as the same Nack and an exception as
the same `RemoteError.<Type>`, with the traceback when the instance sends them; a
caller stops waiting at its deadline while the handler runs on, as a remote one would.
Local calls are bounded like the server's: at most `pool_size` run at once (a pool of
their own beside the server's), the others wait in order and one whose deadline passed
while it waited is refused unrun (DeadlineExceeded), and counted so.
"""
from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable

import gevent

from fannode.core import wire
from fannode.core.transport import Host
from fannode.exceptions import BadReply, BadRequest, DeadlineExceeded, Nack, Unavailable
from fannode.zmqrpc.connection import Call
from fannode.zmqrpc.server import RpcServer, Workers, error_body

log = logging.getLogger(__name__)

# A call waiting for a worker: (request, handler, deadline, the caller's future, its deadline's timer)
Job = tuple[wire.Message, Callable[[], Any], float, Call, Any]

# endpoint → the door of the instance in this process that announces it
doors: dict[str, 'LocalDoor'] = {}


def nearest_first(order: list) -> list:
    """The instances to try (`order`), those in this process first: a local call pays
    for no network hop. Kept in order otherwise, so several local ones take turns."""
    here = [i for i in order if i.endpoint in doors]
    return here + [i for i in order if i.endpoint not in doors] if here else order


class LocalDoor:
    """The in-process entrance of one instance: what its server does for a frame, minus the
    socket. The client sends through it as through a Connection that is always up."""

    connected = was_up = True

    def __init__(self, host: Host, server: RpcServer):
        self.host = host
        self.server = server  # its settings: tracebacks, which subjects are quiet, on_done
        # Long-lived workers as the server's (a greenlet per call would cost more than
        # the rest of the call), as many as it has; calls beyond wait in `queued`.
        self.workers = Workers(server.workers.size, self._wake)
        self.queued: collections.deque[Job] = collections.deque()
        self.endpoint = ''
        self.stopping = False
        self._woken = False

    def open(self, endpoint: str) -> None:
        self.endpoint = endpoint
        doors[endpoint] = self

    def shut(self) -> None:
        """No new calls come in this way (callers go to the other instances); those
        waiting for a worker are refused unrun, so their callers may retry elsewhere."""
        self.stopping = True
        if doors.get(self.endpoint) is self:
            del doors[self.endpoint]
        while self.queued:
            msg, _, _, call, timer = self.queued.popleft()
            timer.close()
            self._answer(call, msg.reply(wire.NACK, {'code': Unavailable.code, 'message': 'instance is stopping'}))

    @property
    def running(self) -> int:
        return self.workers.running

    def wait(self, timeout: float) -> bool:
        """Whether the local calls running finished within `timeout` seconds."""
        return self.workers.wait(timeout)

    def kill(self) -> None:
        self.workers.kill()

    def send(self, frame: bytes, call: Call) -> bool:
        """Start answering the request `frame` (as encoded for the wire) for `call`."""
        call.endpoint = self.endpoint
        try:
            msg = wire.decode(frame)
        except wire.ProtocolError as e:  # what the server would refuse, refused the same way
            self._answer(call, wire.Message(wire.NACK, call.id, call.subject,
                                            {'code': BadRequest.code, 'message': str(e)}))
            return True
        try:
            if self.stopping:
                raise Unavailable('instance is stopping')
            func = self.server.admit(msg, lambda: self.host.dispatch(msg.subject, msg.body))
        except Nack as e:
            self._answer(call, msg.reply(wire.NACK, {'code': e.code, 'message': str(e)}))
            return True
        except Exception as e:  # a bug in resolving: the caller hears of it, not a timeout
            log.exception('%s: resolving the request failed', msg.subject)
            self._answer(call, msg.reply(wire.ERROR, error_body(e, bool(self.server.tracebacks))))
            return True
        deadline = time.monotonic() + msg.deadline_ms / 1000.0 if msg.deadline_ms else 0.0
        # The caller stops waiting at its deadline, as its connection would make it.
        timer = gevent.get_hub().loop.timer(max(0.0, call.deadline - time.monotonic()))
        timer.start(lambda: call.fail(call.timed_out()))
        self.queued.append((msg, func, deadline, call, timer))
        self._wake()
        return True

    def _wake(self) -> None:
        """Start what waits, from the loop (workers are switched to from there only)."""
        if self.queued and not self._woken:
            self._woken = True
            gevent.get_hub().loop.run_callback(self._start)

    def _start(self) -> None:
        """In the loop: start queued calls, oldest first, while workers are free; refuse
        those whose deadline passed while they waited, as the server does."""
        self._woken = False
        queued, workers = self.queued, self.workers
        while queued and not workers.full:
            job = queued.popleft()
            if job[2] and time.monotonic() > job[2]:
                job[4].close()
                self._expired(job[0], job[2], job[3])
            else:
                workers.submit(self._run, *job)

    def _run(self, msg: wire.Message, func: Callable[[], Any], deadline: float, call: Call, timer: Any) -> None:
        try:
            if deadline and time.monotonic() > deadline:
                self._expired(msg, deadline, call)  # waited past the caller's deadline
            else:
                self._serve(msg, func, deadline, call)
        finally:
            timer.close()

    def _serve(self, msg: wire.Message, func: Callable[[], Any], deadline: float, call: Call) -> None:
        """As the server runs a request off the wire (RpcServer.serve), the reply delivered here."""
        self.server.serve(msg, func, deadline, lambda frame: self._deliver(call, frame), local=True)

    def _expired(self, msg: wire.Message, deadline: float, call: Call) -> None:
        late = (time.monotonic() - deadline) * 1000
        self._answer(call, msg.reply(wire.NACK, {'code': DeadlineExceeded.code, 'message': (
            '%s: not run: its deadline (%d ms) passed %.0f ms before a worker was free'
            % (msg.subject, msg.deadline_ms, late))}))
        if self.server.on_done is not None and not self.server.quiet(msg.subject):
            self.server.on_done(msg.subject, 0.0, True, expired=True)

    def _answer(self, call: Call, reply: wire.Message) -> None:
        """A refusal: delivered from the loop, never inside send(), so the caller has set
        up the call (its breaker) before it ends, as when a refusal comes over the wire."""
        gevent.get_hub().loop.run_callback(self._deliver, call, reply.encode())

    def _deliver(self, call: Call, frame: bytes) -> None:
        """Resolve `call` with the reply `frame`, read back as a connection reads it."""
        if call.ready():  # its caller stopped waiting (deadline)
            return
        try:
            reply = wire.decode(frame)
        except wire.ProtocolError as e:
            call.fail(BadReply('%s: bad reply from %s: %s' % (call.subject, self.endpoint, e)))
            return
        call.resolve(reply)
