"""A call to one given instance, rather than to any instance of a service: for admin
commands that must reach each instance (`fannode change-loglevel`)."""
from __future__ import annotations

from typing import Any

from fannode.core import trace
from fannode.exceptions import Timeout
from fannode.zmqrpc import protocol
from fannode.zmqrpc.connection import Call, Connection, shared_context


def call_instance(endpoint: str, subject: str, kwargs: dict[str, Any], timeout: float = 3.0) -> Any:
    """Call `subject` ('Service.method') at `endpoint` on a connection of its own (a
    client's shared ones are closed when discovery drops them) and return the reply."""
    conn = Connection(shared_context(), endpoint)
    try:
        call = Call(subject, 1, timeout)
        if not conn.wait_connected(timeout):
            raise Timeout('%s: cannot connect to %s within %gs' % (subject, endpoint, timeout))
        msg = protocol.Message(protocol.REQ, call.id, subject, kwargs, trace_id=trace.ensure_id(),
                               span_id=trace.get_span(), deadline_ms=int(timeout * 1000))
        if not conn.send(msg.encode(), call):
            raise Timeout('%s: cannot send to %s' % (subject, endpoint))
        return call.get()
    finally:
        conn.close()
