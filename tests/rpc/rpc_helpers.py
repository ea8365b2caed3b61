"""What the RPC tests share: a hub and real instances in the test's process, a bare
RpcServer running given functions, and raw sockets that send any bytes at all."""
from __future__ import annotations

import itertools

import pytest
import zmq.green as zmq

from conftest import TESTS, free_port
from fannode.core import serial, wire
from fannode.core.config import load_config
from fannode.calls.client import RpcClient
from fannode.discovery import get_registry
from fannode.hub.server import Hub
from fannode.runtime.container import ServiceContainer
from fannode.zmqrpc.connection import Call, Connection, shared_context
from fannode.zmqrpc.server import RpcServer

_ids = itertools.count(1)


@pytest.fixture
def hub_url():
    hub = Hub(instance_ttl=1.0)
    port = free_port()
    hub.bind('127.0.0.1', port)
    hub.start()
    yield 'hub://127.0.0.1:%d' % port
    hub.stop()


@pytest.fixture
def start(hub_url):
    """start(**env) -> a running Greeting instance; all are stopped after the test."""
    containers = []

    def start_one(config=None, **env):
        config = config or load_config(TESTS / 'conf' / 'demo.yml', env=env)
        container = ServiceContainer(config, hub_url, events=hub_url)
        container.start()
        containers.append(container)
        return container

    yield start_one
    for c in containers:
        c.stop(timeout=0)


@pytest.fixture
def client(hub_url):
    c = RpcClient(get_registry(hub_url))
    yield c
    c.close()
    c.registry.close()


@pytest.fixture
def serve():
    """serve({subject: function}, ip=...) -> (server, a Connection to it); each function
    gets (peer, body) and its return value is the reply."""
    closing = []

    def start(functions, on_notify=None, ip='127.0.0.1', **options):
        server = RpcServer(lambda peer, msg: lambda: functions[msg.subject](peer, msg.body), **options)
        server.bind(ip)
        server.start()
        if ip == '0.0.0.0':
            server.endpoint = server.endpoint.replace('0.0.0.0', '127.0.0.1')
        conn = Connection(shared_context(), server.endpoint, on_notify)
        closing.append((server, conn))
        assert conn.wait_connected(2)
        return server, conn

    yield start
    for server, conn in closing:
        conn.close()
        server.close(linger=0)


def call(conn, subject, body=None, trace_id='', timeout=2.0):
    """A call over `conn`; its reply, or what it raised."""
    future = Call(subject, next(_ids), timeout)
    assert conn.send(wire.Message(wire.REQ, future.id, subject, body, trace_id).encode(), future)
    return future.get()


def frame(*fields, body=None):
    """A request frame with `fields` in place of the documented ones, from the left:
    frame(1, 1, 7, 'x.echo', '', '', 'soon') has a string for deadline_ms."""
    default = [wire.VERSION, wire.REQ, next(_ids), 'x.echo', '', '', 0, {}, body]
    return serial.dumps(list(fields) + default[len(fields):])


class Raw:
    """A DEALER that sends any bytes and reads frames as they come."""

    def __init__(self, endpoint):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)

    def send(self, *frames):
        self.socket.send_multipart(list(frames))

    def recv(self, timeout=2.0):
        """The next message decoded, or None when none came in time."""
        if not self.socket.poll(int(timeout * 1000)):
            return None
        return wire.decode(self.socket.recv())

    def request(self, subject, body=None, timeout=2.0):
        """A well-formed request; its reply (skipping replies to earlier frames)."""
        msg = wire.Message(wire.REQ, next(_ids), subject, body)
        self.send(msg.encode())
        while True:
            reply = self.recv(timeout)
            if reply is None or reply.id == msg.id:
                return reply

    def close(self):
        self.socket.close()
