"""Readiness checks the node runs on its asyncio loop (it never imports gevent).

A service instance is ready when the hub lists it (matched by pid); other commands
when their `ready:` check passes: a TCP connect, an HTTP answer below 500, a log line.
"""
from __future__ import annotations

import asyncio
import itertools
from urllib.parse import urlsplit

import zmq
import zmq.asyncio

from fannode.zmqrpc import protocol
from fannode.zmqrpc.link import hub_endpoint

_ids = itertools.count(1)


class HubProbe:
    """Asks the hub which pids are registered. One DEALER, one request at a time."""

    def __init__(self, url: str, context: zmq.asyncio.Context):
        self.endpoint = hub_endpoint(url)
        self.context = context
        self.socket: zmq.asyncio.Socket | None = None
        self.lock = asyncio.Lock()  # a reply must reach the call that asked for it

    def _reset(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.connect(self.endpoint)

    async def call(self, method: str, timeout: float = 1.0, **body):
        async with self.lock:
            return await self._call(method, timeout, body)

    async def _call(self, method: str, timeout: float, body: dict):
        if self.socket is None:
            self._reset()
        msg = protocol.Message(protocol.REQ, next(_ids), 'hub.' + method, body, deadline_ms=int(timeout * 1000))
        await self.socket.send(msg.encode())
        while True:
            try:
                frame = await asyncio.wait_for(self.socket.recv(), timeout)
            except asyncio.TimeoutError:
                self._reset()  # a late reply must not answer the next request
                return None
            reply = protocol.decode(frame)
            if reply.id == msg.id:
                return reply.body if reply.type == protocol.REP else None

    async def registered_pids(self) -> dict[int, list[str]]:
        """pid → the services it registered; empty when the hub does not answer."""
        services = await self.call('services') or {}
        pids: dict[int, list[str]] = {}
        for name, instances in services.items():
            for info in instances:
                pids.setdefault(info.get('pid'), []).append(name)
        return pids

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None


async def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


async def http_ok(url: str, timeout: float = 1.0) -> bool:
    """A GET answered with a status below 500."""
    parts = urlsplit(url)
    path = (parts.path or '/') + ('?' + parts.query if parts.query else '')
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or '127.0.0.1', parts.port or 80), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        writer.write(('GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' % (path, parts.netloc)).encode())
        status = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()
    fields = status.split()
    return len(fields) >= 2 and fields[1].isdigit() and int(fields[1]) < 500


def tcp_target(target: str | int) -> tuple[str, int]:
    if isinstance(target, int):
        return '127.0.0.1', target
    host, _, port = str(target).rpartition(':')
    return host or '127.0.0.1', int(port)
