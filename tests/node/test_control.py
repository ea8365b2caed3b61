"""The control socket on its own, with a stand-in node: every message is handled in
isolation and the loop never stops answering."""
import asyncio
import io
import os
import socket
import stat
from types import SimpleNamespace

import pytest
import zmq
import zmq.asyncio
from rich.console import Console

from fannode.core import wire
from fannode.node import control
from fannode.node.client import request
from fannode.node.output import Printer
from fannode.node.rollout import Rollouts


class Block:
    def __init__(self, name, desired=1):
        self.name, self.desired = name, desired
        self.live, self.index = {101}, {101: 1}
        self.spec = SimpleNamespace(version='')

    def status(self):
        return {'name': self.name, 'desired': self.desired}

    def scale(self, count):
        self.desired = count


class FakeNode:
    def __init__(self):
        self.name = 'test'
        self.topology = SimpleNamespace(path='/x/node.yml', registry='hub://127.0.0.1:1', instances={'web': None})
        self.out = io.StringIO()
        self.printer = Printer(console=Console(file=self.out, width=500))
        self.blocks = {'web': Block('web')}
        self.changing = asyncio.Lock()
        self.rollouts = Rollouts(self)
        self.release = asyncio.Event()

    def block(self, name):
        from fannode.exceptions import UsageError
        if name not in self.blocks:
            raise UsageError("no instance block '%s'" % name)
        return self.blocks[name]

    async def restart(self, name):
        if name == 'web':
            raise RuntimeError('boom')

    async def reload(self):
        await self.release.wait()  # a change that takes its time
        return {'applied': []}


def run(tmp_path, scenario):
    """Serve a FakeNode on an ipc socket under tmp_path while `scenario(node, call, endpoint)` runs."""
    endpoint = 'ipc://%s' % (tmp_path / 'control')

    async def main():
        node = FakeNode()
        server = asyncio.ensure_future(control.serve(node, endpoint, zmq.asyncio.Context.instance()))
        loop = asyncio.get_running_loop()

        async def call(subject, body=None, timeout=5.0):
            return await loop.run_in_executor(None, request, endpoint, subject, body, timeout)
        try:
            await asyncio.sleep(0.05)
            await scenario(node, call, endpoint)
            assert not server.done()  # still serving
        finally:
            server.cancel()
    asyncio.run(main())


def test_an_exception_in_a_handler_is_an_error_reply_and_the_next_request_is_answered(tmp_path):
    async def scenario(node, call, _):
        reply = await call('node.restart', {'name': 'web'})
        assert (reply.type, reply.body['message']) == (wire.ERROR, 'the node failed to handle node.restart: boom')
        assert 'control request node.restart failed: RuntimeError: boom' in node.out.getvalue()
        reply = await call('node.ps')
        assert reply.type == wire.REP and reply.body['blocks'] == [{'name': 'web', 'desired': 1, 'version': ''}]
    run(tmp_path, scenario)


@pytest.mark.parametrize('subject, body, message', [
    ('node.scale', [1, 2], "the body of 'node.scale' must be a mapping, got [1, 2]"),
    ('node.scale', {'name': 'web'}, "'count' must be a whole number >= 0, got None"),
    ('node.scale', {'name': 'web', 'count': True}, "'count' must be a whole number >= 0, got True"),
    ('node.scale', {'name': 'web', 'count': -1}, "'count' must be a whole number >= 0, got -1"),
    ('node.scale', {'name': ['web'], 'count': 1}, "'name' must be a block name, got ['web']"),
    ('node.scale', {'name': 'w' * 65, 'count': 1}, "'name' is 65 characters long; block names have at most 64"),
    ('node.restart_process', {'pid': '101'}, "'pid' must be a process id, got '101'"),
    ('node.restart_process', {'pid': 1}, 'pid 1 is not a process of this node'),
    ('node.nothing', {}, "the node has no method 'node.nothing'"),
])
def test_bad_bodies_are_answered_with_an_error_naming_the_field(tmp_path, subject, body, message):
    async def scenario(node, call, _):
        reply = await call(subject, body)
        assert (reply.type, reply.body['message']) == (wire.ERROR, message)
        assert (await call('node.ps')).type == wire.REP
    run(tmp_path, scenario)


def test_bad_frames_are_counted_dropped_and_reported_once(tmp_path):
    async def scenario(node, call, endpoint):
        with socket.socket(socket.AF_UNIX) as raw:  # ZMTP/1.0 framing: a three-part message
            raw.connect(endpoint[len('ipc://'):])
            raw.sendall(b'\x01\x00' + b'\x02\x01a' + b'\x02\x00b')
            await asyncio.sleep(0.1)
        dealer = zmq.Context.instance().socket(zmq.DEALER)
        dealer.linger = 1000
        dealer.connect(endpoint)
        dealer.send_multipart([b'a', b'b'])
        dealer.send(b'\xc1')  # not msgpack
        dealer.send(wire.Message(wire.REP, 1, 'node.ps').encode())  # a reply is not a request
        dealer.close()
        await asyncio.sleep(0.2)
        reply = await call('node.ps')
        assert reply.body['control'] == {'dropped': 4}
        assert node.out.getvalue().count('dropped a malformed message') == 1
    run(tmp_path, scenario)


def test_ps_answers_while_a_change_runs_and_too_many_changes_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(control, 'MAX_PENDING', 1)

    async def scenario(node, call, _):
        slow = asyncio.ensure_future(call('node.reload'))
        await asyncio.sleep(0.1)
        assert (await call('node.ps', timeout=2.0)).type == wire.REP
        busy = await call('node.scale', {'name': 'web', 'count': 2})
        assert busy.body['message'] == 'the node is busy with 1 requests; try again'
        node.release.set()
        assert (await slow).body == {'applied': []}
    run(tmp_path, scenario)


def test_the_socket_is_the_users_alone(tmp_path):
    async def scenario(node, call, endpoint):
        assert stat.S_IMODE(os.stat(endpoint[len('ipc://'):]).st_mode) == 0o600
    old = os.umask(0)
    try:
        run(tmp_path, scenario)
    finally:
        os.umask(old)
