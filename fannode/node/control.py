"""The node's control interface: fannode's RPC framing on a ROUTER bound to a
per-node ipc:// socket (mode 0600, in a 0700 directory). Other processes use it through
fannode.node.client.

Whatever reaches the socket is hostile until shown otherwise: each message is handled on
its own, a malformed one is counted and dropped (the first is reported), a bad body is
answered with an ERROR naming the field, and an exception in a handler becomes an ERROR
reply. Nothing a peer sends stops the loop, so `fannode ps` always answers.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Protocol

import zmq
import zmq.asyncio

from fannode.core import wire
from fannode.core.text import short
from fannode.core.limits import KIB, setting
from fannode.exceptions import FannodeError, UsageError
from fannode.node import capacity
from fannode.node import paths
from fannode.node import timeline
from fannode.node.block import Block
from fannode.node.output import Printer
from fannode.node.rollout import Rollouts, rollout_verb
from fannode.node.topology import NAME_MAX, Topology

# Bigger requests make libzmq drop the connection before they are read into memory.
MAX_REQUEST = setting('FANNODE_CONTROL_MAX_REQUEST', 64 * KIB, low=1 * KIB)
# Requests being worked on at once (a restart waits out stop_timeout); more are refused.
MAX_PENDING = setting('FANNODE_CONTROL_MAX_PENDING', 16, low=1)

log = logging.getLogger(__name__)


class Controlled(Protocol):
    """What the control socket uses of the node (fannode.node.supervisor.Node)."""

    name: str
    topology: Topology
    printer: Printer
    blocks: dict[str, Block]
    changing: asyncio.Lock  # one change at a time: control requests and node.yml edits
    rollouts: Rollouts

    def block(self, name: str) -> Block: ...

    async def restart(self, name: str) -> None: ...

    async def reload(self) -> dict[str, Any]: ...


class Server:
    def __init__(self, node: Controlled, socket: zmq.asyncio.Socket):
        self.node, self.socket = node, socket
        self.dropped = 0   # malformed messages, shown by `fannode ps --json`
        self.pending: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            try:
                frames = await self.socket.recv_multipart()
            except zmq.ZMQError as e:  # nothing a peer does should get here; never fatal
                self.drop('cannot receive: %s' % e)
                await asyncio.sleep(0.01)
                continue
            try:
                self.on_message(frames)
            except Exception as e:  # a bug here must cost one message, not the socket
                log.exception('control message failed')
                self.drop('%s: %s' % (type(e).__name__, e))

    def drop(self, why: str) -> None:
        self.dropped += 1
        if self.dropped == 1:
            self.node.printer.error('control socket: dropped a malformed message (%s); '
                                    'more are only counted' % why)

    def on_message(self, frames: list[bytes]) -> None:
        if len(frames) != 2:  # [peer identity, one fannode frame]
            self.drop('%d frames, expected 2' % len(frames))
            return
        identity, frame = frames
        try:
            msg = wire.decode(frame)
        except wire.ProtocolError as e:
            if e.id is not None:  # e.g. another protocol version: it can be told why
                self.send(identity, wire.Message(wire.ERROR, e.id, e.subject, error(e)))
            else:
                self.drop(str(e)[:80])
            return
        if msg.type != wire.REQ:
            self.drop('a %s, not a request' % wire.TYPE_NAMES[msg.type])
            return
        if msg.subject == 'node.ps':  # read-only: answered at once, even while a change runs
            self.send(identity, msg.reply(wire.REP, self.ps()))
            return
        if msg.subject == 'node.timeline':  # read-only too (fannode.node.timeline; attach polls it)
            try:
                self.send(identity, msg.reply(wire.REP, timeline.verb(self.node.printer.timeline, msg.body)))
            except UsageError as e:
                self.send(identity, msg.reply(wire.ERROR, error(e)))
            return
        if len(self.pending) >= MAX_PENDING:
            self.send(identity, msg.reply(wire.ERROR, error(UsageError(
                'the node is busy with %d requests; try again' % len(self.pending)))))
            return
        task = asyncio.ensure_future(self.answer(identity, msg))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def answer(self, identity: bytes, msg: wire.Message) -> None:
        try:
            self.node.rollouts.refuse_busy(msg.subject)  # rather than wait for its end
            async with self.node.changing:
                body = await handle(self.node, msg.subject, msg.body)
            reply = msg.reply(wire.REP, body)
        except FannodeError as e:
            reply = msg.reply(wire.ERROR, error(e))
        except Exception as e:
            log.exception('control request %s failed', msg.subject)
            self.node.printer.error('control request %s failed: %s: %s' % (msg.subject, type(e).__name__, e))
            reply = msg.reply(wire.ERROR, error(e, 'the node failed to handle %s: ' % msg.subject))
        self.send(identity, reply)

    def send(self, identity: bytes, reply: wire.Message) -> None:
        try:
            data = reply.encode()
        except Exception as e:  # noqa: BLE001 - a reply that cannot be encoded is still answered
            data = reply.reply(wire.ERROR, error(e, 'cannot encode the reply: ')).encode()
        try:
            # ROUTER never blocks: a peer that went away or stopped reading loses its reply
            self.socket.send_multipart([identity, data], zmq.NOBLOCK)
        except zmq.ZMQError as e:
            log.debug('control reply not sent: %s', e)

    def ps(self) -> dict[str, Any]:
        node = self.node
        return {'node': node.name, 'file': node.topology.path, 'registry': node.topology.registry,
                'pid': os.getpid(), 'blocks': node.rollouts.statuses(),
                'max_processes': capacity.limit(), 'control': {'dropped': self.dropped}}


def error(e: Exception, prefix: str = '') -> dict[str, str]:
    return {'type': type(e).__name__, 'message': prefix + str(e)}


async def serve(node: Controlled, endpoint: str, context: zmq.asyncio.Context) -> None:
    socket = context.socket(zmq.ROUTER)
    socket.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST)
    path = endpoint[len('ipc://'):]
    if os.path.exists(path):
        os.unlink(path)  # left by a node that was killed; the lock says none runs now
    mask = os.umask(0o177)  # the socket is never, even for a moment, open to others
    try:
        socket.bind(endpoint)
    finally:
        os.umask(mask)
    paths.private_file(path)
    try:
        await Server(node, socket).run()
    finally:
        socket.close(linger=0)
        if os.path.exists(path):  # a node stopping answers no more: clients look at its lock (stopnode)
            os.unlink(path)


def _field(body: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UsageError("'%s' must be %s, got %s" % (key, what, short(value)))
    return value


def _name(body: dict[str, Any]) -> str:
    name = _field(body, 'name', str, 'a block name')
    if len(name) > NAME_MAX:
        raise UsageError("'name' is %d characters long; block names have at most %d" % (len(name), NAME_MAX))
    return name


async def handle(node: Controlled, subject: str, body: Any) -> Any:
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise UsageError('the body of %s must be a mapping, got %s' % (short(subject), short(body)))
    if subject == 'node.scale':
        block = node.block(_name(body))
        count = _field(body, 'count', int, 'a whole number >= 0')
        if count < 0:
            raise UsageError("'count' must be a whole number >= 0, got %d" % count)
        capacity.check_scale({n: b.desired for n, b in node.blocks.items()
                               if n in node.topology.instances}, block.name, count)
        before = block.desired
        block.scale(count)
        node.printer.event('%s: %d → %d processes (fannode scale)' % (block.name, before, count), 'cyan')
        return {'name': block.name, 'before': before, 'count': count}
    if subject == 'node.restart':
        name = node.block(_name(body)).name
        node.printer.event('%s: restarting (fannode restart)' % name, 'cyan')
        await node.restart(name)
        return {'name': name}
    if subject == 'node.restart_process':  # one process (fannode top's `r`): stopped, replaced
        pid = _field(body, 'pid', int, 'a process id')
        for block in node.blocks.values():
            if pid in block.live:  # only processes of this node, never any other pid
                index = block.index[pid]
                node.printer.event('%s.%d: restarting pid %d (fannode top)' % (block.name, index, pid), 'cyan')
                block.stop_process(pid)
                block.sync()
                return {'name': block.name, 'index': index, 'pid': pid}
        raise UsageError('pid %d is not a process of this node' % pid)
    if subject == 'node.reload':
        return await node.reload()
    if subject in ('node.rollout', 'node.rollback'):  # started here, followed with node.ps
        return rollout_verb(node, subject, _name(body))
    raise UsageError('the node has no method %s' % short(subject))
