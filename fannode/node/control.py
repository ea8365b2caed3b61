"""The node's control interface: fannode's RPC framing on a ROUTER bound to a
per-node ipc:// socket (loopback only by construction). Other processes use it through
fannode.node.client."""
from __future__ import annotations

import logging
import os
from typing import Any, Protocol

import zmq
import zmq.asyncio

from fannode.core import wire
from fannode.exceptions import FannodeError, UsageError
from fannode.node.block import Block
from fannode.node.output import Printer
from fannode.node.topology import Topology


class Controlled(Protocol):
    """What the control socket uses of the node (fannode.node.supervisor.Node)."""

    name: str
    topology: Topology
    printer: Printer
    blocks: dict[str, Block]

    def block(self, name: str) -> Block: ...

    async def restart(self, name: str) -> None: ...

    async def reload(self) -> dict[str, Any]: ...

log = logging.getLogger(__name__)


async def serve(node: Controlled, endpoint: str, context: zmq.asyncio.Context) -> None:
    socket = context.socket(zmq.ROUTER)
    path = endpoint[len('ipc://'):]
    if os.path.exists(path):
        os.unlink(path)  # left by a node that was killed; the lock says none runs now
    socket.bind(endpoint)
    try:
        while True:
            identity, frame = await socket.recv_multipart()
            try:
                msg = wire.decode(frame)
            except wire.ProtocolError:
                continue
            try:
                body = await handle(node, msg.subject, msg.body or {})
                reply = msg.reply(wire.REP, body)
            except (FannodeError, TypeError, ValueError) as e:
                reply = msg.reply(wire.ERROR, {'type': type(e).__name__, 'message': str(e)})
            await socket.send_multipart([identity, reply.encode()])
    finally:
        socket.close(linger=0)


async def handle(node: Controlled, subject: str, body: dict[str, Any]) -> Any:
    if subject == 'node.ps':
        return {'node': node.name, 'file': node.topology.path, 'registry': node.topology.registry,
                'pid': os.getpid(), 'blocks': [b.status() for b in node.blocks.values()]}
    if subject == 'node.scale':
        count = body.get('count')
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise UsageError('the count must be a whole number >= 0, got %r' % (count,))
        block = node.block(body.get('name', ''))
        before = block.desired
        block.scale(count)
        node.printer.event('%s: %d → %d processes (fannode scale)' % (block.name, before, count), 'cyan')
        return {'name': block.name, 'before': before, 'count': count}
    if subject == 'node.restart':
        name = body.get('name', '')
        node.block(name)
        node.printer.event('%s: restarting (fannode restart)' % name, 'cyan')
        await node.restart(name)
        return {'name': name}
    if subject == 'node.restart_process':  # one process (fannode top's `r`): stopped, replaced
        pid = body.get('pid')
        for block in node.blocks.values():
            if pid is not None and pid in block.live:
                index = block.index[pid]
                node.printer.event('%s.%d: restarting pid %d (fannode top)' % (block.name, index, pid), 'cyan')
                block.stop_process(pid)
                block.sync()
                return {'name': block.name, 'index': index, 'pid': pid}
        raise UsageError('pid %r is not a process of this node' % (pid,))
    if subject == 'node.reload':
        return await node.reload()
    raise UsageError("the node has no method '%s'" % subject)
