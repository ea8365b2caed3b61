"""The round of calls `fannode top` and the node's dashboard make every interval: one
`get_metrics` to every instance, over connections kept between rounds.

Every request goes out first, then the replies are collected: no greenlet per instance
(at 200 instances, spawning and switching to 200 greenlets a second was about a fifth of
the data source's CPU). An instance whose connection is not up yet (one just listed) gets
the round's timeout to connect, in a greenlet of its own, as any call does.

The connections heartbeat every 5 s (a silent peer dropped after 15 s) rather than an RPC
client's 0.5 s: each instance is asked every interval and shown unresponsive when it does
not answer within the round's timeout, whatever the heartbeat, and an instance that goes
away leaves discovery within its lease (2 s), which closes its connection here. At 200
instances the RPC client's heartbeats were 800 messages a second through this process's
ZeroMQ I/O thread.
"""
from __future__ import annotations

import itertools
import time
from typing import Any, Hashable, TypeVar

from fannode.core import trace
from fannode.exceptions import Timeout
from fannode.zmqrpc.connection import Call, Connection, shared_context
from fannode.zmqrpc.direct import call_on, send_call

HEARTBEAT_MS = (5000, 15000)
K = TypeVar('K', bound=Hashable)
_ids = itertools.count(1)


class InstanceAsks:
    """Connections to given instances, and rounds of calls over them."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}

    def connection(self, endpoint: str) -> Connection:
        conn = self.connections.get(endpoint)
        if conn is None:
            conn = self.connections[endpoint] = Connection(shared_context(), endpoint, heartbeat_ms=HEARTBEAT_MS)
        return conn

    def ask_all(self, asks: dict[K, tuple[str, str]], timeout: float) -> dict[K, Any]:
        """`asks`: key → (endpoint, subject), called without arguments. Returns key → the
        reply, or the exception its call ended with (a Timeout when none came in `timeout`)."""
        import gevent
        end = time.monotonic() + timeout + 0.2
        answers: dict[K, Any] = {}
        sent: dict[K, Call] = {}
        connecting: dict[K, Any] = {}
        for key, (endpoint, subject) in asks.items():
            try:
                conn = self.connection(endpoint)
                if conn.connected:
                    call = Call(subject, next(_ids), timeout)  # a trace of its own, as each call had in its greenlet
                    sent[key] = send_call(conn, call, {}, trace.get_id() or trace.new_id())
                else:
                    connecting[key] = gevent.spawn(_caught, call_on, conn, subject, {}, timeout)
            except Exception as e:  # noqa: BLE001 - a bad endpoint, a lost connection: this instance's answer
                answers[key] = e
        for key, call in sent.items():
            answers[key] = _caught(call.get)
        gevent.joinall(list(connecting.values()), timeout=max(0.0, end - time.monotonic()))
        for key, job in connecting.items():
            if not job.ready():
                job.kill(block=False)
            answers[key] = job.value if job.ready() else Timeout('no answer within %gs' % timeout)
        return answers

    def keep_only(self, endpoints: set[str]) -> None:
        """Close the connections to endpoints not in `endpoints` (they left discovery)."""
        for endpoint in set(self.connections) - endpoints:
            self.connections.pop(endpoint).close()

    def close(self) -> None:
        self.keep_only(set())


def _caught(work: Any, *args: Any) -> Any:
    """What `work` returns, or the exception it raised."""
    try:
        return work(*args)
    except Exception as e:  # noqa: BLE001 - the caller looks at it
        return e
