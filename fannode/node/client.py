"""Talking to a running node from another process: the one way the CLI and the TUI
reach it (`fannode ps`, `scale`, `restart`, `reload`, `top`). Requests are fannode RPC
frames on the node's control socket (ipc://, one per node.yml, under the runtime dir);
plain blocking pyzmq, no gevent, so any thread may use it."""
from __future__ import annotations

import itertools
import os
from typing import Any

import zmq

from fannode.core import wire
from fannode.exceptions import FannodeError, Unavailable, UsageError
from fannode.node import lockfile, paths
from fannode.node.topology import NAME_MAX

_ids = itertools.count(1)


class NotRunning(FannodeError):
    """No node runs the node.yml asked about."""


class Busy(Unavailable):
    """The node refused a change while a rollout runs: asking again once it is done may
    work (exit 3, as Unavailable)."""


class NodeClient:
    """The node running `node_file`, if any."""

    def __init__(self, node_file: str = 'node.yml', timeout: float = 30.0):
        self.node_file = node_file
        self.timeout = timeout
        self._endpoint = ''

    @property
    def endpoint(self) -> str:
        """Worked out on first use: an unusable runtime dir is an error of the call."""
        if not self._endpoint:
            self._endpoint = paths.control_endpoint(self.node_file)
        return self._endpoint

    @property
    def running(self) -> bool:
        """A node holds the lock of this node.yml and has its control socket up. The lock
        goes with the node's process, so a node killed with SIGKILL, whose socket file
        stays behind, is not waited for. Looked at, not taken: a `fannode up` starting
        meanwhile must not find it held."""
        if not os.path.exists(self.endpoint[len('ipc://'):]):
            return False
        return lockfile.is_locked(paths.node_path(self.node_file, 'lock'))

    def ps(self, timeout: float | None = None) -> dict[str, Any]:
        """The node: name, file, registry, pid and its blocks with their processes."""
        return self.call('ps', timeout)

    def scale(self, name: str, count: int) -> dict[str, Any]:
        return self.call('scale', name=_name(name), count=count)

    def restart(self, name: str) -> dict[str, Any]:
        return self.call('restart', name=_name(name))

    def restart_process(self, pid: int) -> dict[str, Any]:
        return self.call('restart_process', pid=pid)

    def reload(self) -> dict[str, Any]:
        return self.call('reload')

    def call(self, method: str, timeout: float | None = None, **body: Any) -> Any:
        """One request; NotRunning when no node runs, FannodeError when none answers,
        UsageError when it refuses."""
        timeout = self.timeout if timeout is None else timeout
        if not self.running:
            raise NotRunning('no node is running for %s (start one with `fannode up`)' % self.node_file)
        reply = request(self.endpoint, 'node.' + method, body, timeout)
        if reply is None:
            raise FannodeError('the node did not answer within %gs (is `fannode up` still running?)' % timeout)
        body = reply.body
        if reply.type == wire.ERROR:
            message = body.get('message') if isinstance(body, dict) else None
            if isinstance(body, dict) and body.get('type') == Busy.__name__ and isinstance(message, str):
                raise Busy(message)
            raise UsageError(message if isinstance(message, str) else 'the node refused %s' % method)
        return body


def _name(name: str) -> str:
    """A block name the node could have (the node checks again)."""
    if len(name) > NAME_MAX:
        raise UsageError('no instance block of %d characters: names have at most %d' % (len(name), NAME_MAX))
    return name


def request(endpoint: str, subject: str, body: Any, timeout: float) -> wire.Message | None:
    """Send one request on a fresh DEALER; the reply, or None if none came in time."""
    socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    socket.linger = 0
    try:
        socket.connect(endpoint)
        socket.send(wire.Message(wire.REQ, next(_ids), subject, body).encode())
        if not socket.poll(int(timeout * 1000)):
            return None
        try:
            return wire.decode(socket.recv())
        except wire.ProtocolError as e:
            raise FannodeError('%s answered with something other than a fannode reply (%s)' % (endpoint, e)) from None
    finally:
        socket.close()
