"""A call to one given instance, rather than to any instance of a service: for admin
commands and views that must reach each instance (`fannode change-loglevel`, `top`)."""
from __future__ import annotations

import itertools
import time
from typing import Any

from fannode.core import current, deadline, trace
from fannode.exceptions import ConnectionLost, Timeout
from fannode.core import wire
from fannode.zmqrpc.connection import Call, Connection, encode_request, shared_context

_ids = itertools.count(1)


class CannotConnect(Timeout):
    """No connection to the instance within the call's timeout: nobody listens there
    (still a Timeout, for the callers that wait on any)."""


def call_on(conn: Connection, subject: str, kwargs: dict[str, Any], timeout: float) -> Any:
    """Call `subject` ('Service.method') over `conn`, a connection to one instance, and
    return the reply. Made while handling a request, it gets no more time than is left."""
    timeout = deadline.clamp(timeout, subject)
    call = Call(subject, next(_ids), timeout)  # its deadline counts the wait to connect too
    if not conn.wait_connected(timeout):
        raise CannotConnect('%s: cannot connect to %s within %gs' % (subject, conn.endpoint, timeout))
    return send_call(conn, call, kwargs, trace.ensure_id()).get()


def send_call(conn: Connection, call: Call, kwargs: dict[str, Any], trace_id: str) -> Call:
    """Send `call` over `conn`, which is up, in trace `trace_id`; its connection fails it at
    its deadline."""
    msg = wire.Message(wire.REQ, call.id, call.subject, kwargs, trace_id=trace_id,
                       span_id=trace.get_span(), deadline_ms=wire.budget_ms(call.deadline - time.monotonic()),
                       headers=current.outgoing.get())  # user headers set around the call
    if not conn.send(encode_request(msg), call):
        raise ConnectionLost('%s: lost the connection to %s' % (call.subject, conn.endpoint))
    return call


def call_instance(endpoint: str, subject: str, kwargs: dict[str, Any], timeout: float = 3.0) -> Any:
    """`call_on` a connection of its own (a client's shared ones are closed when
    discovery drops them)."""
    conn = Connection(shared_context(), endpoint)
    try:
        return call_on(conn, subject, kwargs, timeout)
    finally:
        conn.close()

