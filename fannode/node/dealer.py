"""One fannode request over a DEALER from the node's asyncio loop: send, then wait until
`timeout` for the reply with this request's id. Replies to earlier requests (late ones,
after a timeout) and frames that are not fannode's are skipped. The hub probe, liveness
`rpc: ping` and the Prometheus gathering all ask this way."""
from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import zmq.asyncio

from fannode.core import wire

_ids = itertools.count(1)


async def request(socket: zmq.asyncio.Socket, subject: str, body: dict[str, Any], timeout: float,
                  ack: bool = False) -> wire.Message:
    """The reply (REP or ERR; an ACK too when `ack`: any answer shows the peer runs).
    asyncio.TimeoutError when none came in time; zmq.ZMQError from the socket."""
    msg = wire.Message(wire.REQ, next(_ids), subject, body, deadline_ms=max(1, int(timeout * 1000)))
    deadline = time.monotonic() + timeout
    await asyncio.wait_for(socket.send(msg.encode()), timeout)
    while True:
        frame = await asyncio.wait_for(socket.recv(), max(0.0, deadline - time.monotonic()))
        try:
            reply = wire.decode(frame)
        except wire.ProtocolError:  # not a fannode peer on that port: no answer
            continue
        if reply.id == msg.id and (ack or reply.type != wire.ACK):
            return reply


def body_of(reply: wire.Message) -> Any:
    """A REP's body; None for an error reply."""
    return reply.body if reply.type == wire.REP else None
