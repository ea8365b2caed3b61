"""Liveness probes on the node's loop, with a stand-in block: what passes, what fails, and
what the node does after `failures` failures in a row."""
import asyncio
import io
import socket

import pytest
import zmq
import zmq.asyncio
from rich.console import Console

from fannode.core import wire
from fannode.node import liveness, ready
from fannode.node.livecheck import Liveness
from fannode.node.output import Printer
from fannode.node.spec import InstanceSpec


class FakeNode:
    def __init__(self, blocks, endpoints=None):
        self.blocks = {b.name: b for b in blocks}
        self.out = io.StringIO()
        self.printer = Printer(console=Console(file=self.out, width=500))
        self.stopping = False
        self.directory = '.'
        self.host = 'here'
        self.probe = FakeRegistry(endpoints or {})
        self.troubles = []

    def trouble(self, what, e):
        self.troubles.append('%s: %s' % (what, e))


class FakeRegistry:
    def __init__(self, endpoints):
        self.found, self.asked = endpoints, 0

    async def endpoints(self, host):
        self.asked += 1
        return self.found


class FakeBlock:
    def __init__(self, check, pids=(101,), restart='always'):
        self.name = 'b'
        self.spec = InstanceSpec('b', 'x', ('x',), liveness=check, restart=restart)
        self.node = None
        self.index = {pid: i for i, pid in enumerate(pids, 1)}
        self.since = {pid: 0.0 for pid in pids}
        self.ready_pids = set(pids)
        self.alive = set()
        self.watcher = object()
        self.last_exit, self.restarts, self.gone = '', 0, 0
        self.desired, self.exits, self.failed = len(pids), [], None
        self.stopped, self.synced = [], 0

    @property
    def live(self):
        return set(self.index) - set(self.stopped)

    def stop_process(self, pid):
        self.stopped.append(pid)

    def sync(self):
        self.synced += 1


def closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


async def ticks(prober, until, limit=200):
    for _ in range(limit):
        await prober.tick()
        await asyncio.sleep(0.01)
        if until():
            return
    raise AssertionError('not reached after %d ticks' % limit)


def run(block, endpoints=None, until=None):
    node = FakeNode([block], endpoints)
    block.node = node

    async def go():
        prober = liveness.Prober(node)
        try:
            await ticks(prober, until or (lambda: block.stopped))
        finally:
            for task in prober.running.values():
                task.cancel()
            for sock in prober.sockets.values():
                sock.close(linger=0)
    asyncio.run(go())
    return node


def test_a_process_failing_its_probes_in_a_row_is_stopped_and_replaced():
    check = Liveness('tcp', closed_port(), period=0.05, timeout=0.05, failures=3)
    block = FakeBlock(check)
    node = run(block)
    reason = 'liveness failed: tcp 127.0.0.1:%d not accepting within 0.05s (3 in a row)' % check.target
    assert block.stopped == [101] and block.synced == 1
    assert block.last_exit == reason and block.restarts == 1 and block.gone == 0
    assert 'b.1 %s; restarting' % reason in node.out.getvalue()


def test_with_restart_never_it_is_stopped_and_not_replaced():
    block = FakeBlock(Liveness('tcp', closed_port(), period=0.05, timeout=0.05, failures=1), restart='never')
    node = run(block)
    assert block.stopped == [101] and block.gone == 1 and block.restarts == 0
    assert 'not restarted (restart: never)' in node.out.getvalue()
    # an outcome, and not a success: `depends_on: {b: completed_successfully}` is not met
    assert block.exits == [None] and block.failed.startswith('liveness failed: tcp')


def test_a_probe_that_raises_counts_as_failed_and_is_reported_once(monkeypatch):
    block = FakeBlock(Liveness('tcp', closed_port(), period=0.05, timeout=0.05, failures=3))

    async def broken(*args):
        raise RuntimeError('boom')
    monkeypatch.setattr(liveness.Prober, 'attempt', lambda self, *a: broken())
    node = FakeNode([block])
    node.trouble = lambda what, e: node.troubles.append('%s: %s' % (what, e))
    block.node = node

    async def go():
        prober = liveness.Prober(node)
        await ticks(prober, lambda: block.stopped)
    asyncio.run(go())
    assert block.last_exit == 'liveness failed: probe error: boom (3 in a row)' and block.stopped == [101]
    assert set(node.troubles) == {'liveness probe of b: boom'}  # the node says a text once (Node.trouble)


def test_an_exec_probe_gets_the_node_variables_even_when_the_block_env_names_them(tmp_path):
    out = tmp_path / 'env'
    block = FakeBlock(Liveness('exec', ('sh', '-c', 'echo "$FANNODE_PID $FANNODE_BLOCK $OWN" > %s' % out),
                               period=0.05, timeout=2.0, failures=1))
    block.spec = InstanceSpec('b', 'x', ('x',), liveness=block.spec.liveness,
                              env=(('FANNODE_PID', '1'), ('FANNODE_BLOCK', 'other'), ('OWN', 'mine')))
    run(block, until=lambda: block.alive)
    assert out.read_text() == '101 b mine\n'


def test_https_is_probed_over_tls_without_checking_the_certificate_and_a_bad_port_is_no_exception(tmp_path):
    import shutil
    import ssl
    import subprocess
    if shutil.which('openssl') is None:
        pytest.skip('no openssl to make a certificate')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=x',
                    '-keyout', str(tmp_path / 'key'), '-out', str(tmp_path / 'cert')], check=True, capture_output=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(tmp_path / 'cert'), str(tmp_path / 'key'))

    async def answer(reader, writer):
        await reader.readline()
        writer.write(b'HTTP/1.0 204 No Content\r\n\r\n')
        await writer.drain()
        writer.close()

    async def go():
        server = await asyncio.start_server(answer, '127.0.0.1', 0, ssl=tls)
        port = server.sockets[0].getsockname()[1]
        try:
            return (await ready.http_ok('https://127.0.0.1:%d/health' % port, 2.0),
                    await ready.http_ok('http://127.0.0.1:%d/health' % port, 2.0))  # plain HTTP to a TLS port
        finally:
            server.close()
    assert asyncio.run(go()) == (True, False)
    assert asyncio.run(ready.http_ok('http://127.0.0.1:99999/', 0.2)) is False


def test_exec_probes_pass_on_status_0_and_fail_otherwise(tmp_path):
    passing = FakeBlock(Liveness('exec', ('true',), period=0.05, timeout=2.0, failures=1))
    run(passing, until=lambda: passing.alive)
    assert passing.alive == {101} and not passing.stopped

    failing = FakeBlock(Liveness('exec', ('sh', '-c', 'exit 3'), period=0.05, timeout=2.0, failures=1))
    run(failing)
    assert failing.last_exit == 'liveness failed: exec sh exited with status 3 (1 in a row)'

    missing = FakeBlock(Liveness('exec', ('no-such-command-here',), period=0.05, timeout=2.0, failures=1))
    run(missing)
    assert missing.last_exit == 'liveness failed: exec no-such-command-here: command not found (1 in a row)'

    slow = FakeBlock(Liveness('exec', ('sleep', '5'), period=0.2, timeout=0.1, failures=1))
    run(slow)
    assert slow.last_exit == 'liveness failed: exec sleep timed out after 0.1s (1 in a row)'


def test_rpc_ping_goes_to_the_instance_endpoint_and_any_answer_passes():
    context = zmq.asyncio.Context.instance()
    server = context.socket(zmq.ROUTER)
    port = server.bind_to_random_port('tcp://127.0.0.1')
    subjects = []
    answering = True

    async def serve():
        while True:
            identity, frame = await server.recv_multipart()
            msg = wire.decode(frame)
            subjects.append(msg.subject)
            if answering:
                await server.send_multipart([identity, msg.reply(wire.REP, msg.body.get('payload')).encode()])

    block = FakeBlock(Liveness('rpc', 'ping', period=0.05, timeout=0.1, failures=2))
    endpoints = {101: ('tcp://127.0.0.1:%d' % port, 'Greeting')}
    node = FakeNode([block], endpoints)
    block.node = node

    async def go():
        nonlocal answering
        task = asyncio.ensure_future(serve())
        prober = liveness.Prober(node)
        try:
            await ticks(prober, lambda: block.alive)
            assert not block.stopped and subjects[0] == 'Greeting.ping'
            answering = False  # wedged: the requests arrive, nothing answers
            await ticks(prober, lambda: block.stopped)
        finally:
            task.cancel()
            for sock in prober.sockets.values():
                sock.close(linger=0)
    try:
        asyncio.run(go())
    finally:
        server.close(linger=0)
    assert block.last_exit == 'liveness failed: rpc ping timed out after 0.1s (2 in a row)'
    assert node.probe.asked >= 1 and not node.troubles


def test_not_probed_before_ready_nor_before_initial_delay():
    block = FakeBlock(Liveness('tcp', closed_port(), period=0.05, timeout=0.05, failures=1, initial_delay=3600))
    block.since = {101: float('inf')}  # started "later": the delay never passes
    node = FakeNode([block])
    block.node = node

    async def go():
        prober = liveness.Prober(node)
        for _ in range(10):
            await prober.tick()
            await asyncio.sleep(0.01)
        assert not prober.running and not block.stopped
        block.since, block.ready_pids = {101: 0.0}, set()  # delay over, but not ready
        for _ in range(10):
            await prober.tick()
            await asyncio.sleep(0.01)
        assert not prober.running and not block.stopped
    asyncio.run(go())


def test_healthy_is_ready_and_its_last_probe_passed():
    from fannode.node.block import Block
    spec = InstanceSpec('b', 'x', ('x',), liveness=Liveness('rpc', 'ping'))
    block = Block(FakeNode([]), spec)
    block.index = {7: 1}
    assert not block.healthy(7)
    block.ready_pids.add(7)
    assert not block.healthy(7)  # no probe has passed yet
    block.alive.add(7)
    assert block.healthy(7)
    plain = Block(FakeNode([]), InstanceSpec('c', 'x', ('x',)))
    plain.ready_pids.add(8)
    assert plain.healthy(8)  # without a probe: ready is healthy
