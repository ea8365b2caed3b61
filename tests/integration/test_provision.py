"""scripts/provision and the fixtures: servers that really answer, a stop that leaves no process,
brokers side by side, one-line CLI errors."""
from __future__ import annotations

import socket
import struct
import time

import psutil
import pytest

HOST = '127.0.0.1'
AMQP_HEADER = b'AMQP\x00\x00\x09\x01'


def ask(port: int, data: bytes) -> bytes:
    """Send `data`; read until the server closes (ZooKeeper) or a whole frame is in (AMQP)."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(data)
        reply = b''
        while not whole_frame(reply) and (chunk := s.recv(65536)):
            reply += chunk
    return reply


def whole_frame(reply: bytes) -> bool:
    # AMQP frame: type 1 (method), channel, 4-byte size, payload, 0xCE
    return (reply[:1] == b'\x01' and len(reply) >= 7
            and len(reply) >= 8 + struct.unpack('>I', reply[3:7])[0])


def running(proc: psutil.Process) -> bool:
    try:  # a zombie has exited; only its reaping is left, to whoever adopted it
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes(server) -> list[psutil.Process]:
    """The recorded process, its children and, for RabbitMQ, beam and its own epmd."""
    pids = [server.pid]
    if server.name == 'rabbitmq':
        pids += [int((server.dir / name).read_text()) for name in ('beam.pid', 'epmd.pid')]
    procs = {}
    for pid in pids:
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            procs[p.pid] = p
    return list(procs.values())


def test_zookeeper_answers_srvr(zookeeper):
    assert zookeeper.url == 'zookeeper://127.0.0.1:%d' % zookeeper.port
    assert 'Mode: standalone' in ask(zookeeper.port, b'srvr').decode()


def test_rabbitmq_answers_amqp_handshake(rabbitmq):
    assert rabbitmq.url == 'amqp://guest:guest@127.0.0.1:%d/%%2F' % rabbitmq.port
    frame = ask(rabbitmq.port, AMQP_HEADER)
    kind, channel, size = struct.unpack('>BHI', frame[:7])
    class_id, method_id, major, minor = struct.unpack('>HHBB', frame[7:13])
    # a method frame on channel 0: Connection.Start, AMQP 0-9
    assert (kind, channel, class_id, method_id, major, minor) == (1, 0, 10, 10, 0, 9)
    assert frame[7 + size] == 0xCE
    assert b'RabbitMQ' in frame and b'PLAIN' in frame


def test_zookeeper_stop_leaves_no_process(start_server, provision_cli):
    with start_server('zookeeper') as zk:
        procs = processes(zk)
        assert all(map(running, procs))
        result = provision_cli('stop', 'zookeeper', '--dir', str(zk.dir))
        assert result.returncode == 0 and 'stopped zookeeper' in result.stdout
        assert not [p.pid for p in procs if running(p)]
    # start_server stops once more: nothing runs, which is no error
    assert 'no zookeeper running' in provision_cli('stop', 'zookeeper', '--dir', str(zk.dir)).stdout


def test_two_rabbitmqs_side_by_side_and_stop_one(rabbitmq, start_server, provision_cli):
    with start_server('rabbitmq') as other:
        assert other.port != rabbitmq.port and other.dir != rabbitmq.dir
        for broker in (rabbitmq, other):
            assert ask(broker.port, AMQP_HEADER)[7:11] == b'\x00\x0a\x00\x0a'
        mine, theirs = processes(other), processes(rabbitmq)
        assert not {p.pid for p in mine} & {p.pid for p in theirs}  # each its own epmd too

        result = provision_cli('stop', 'rabbitmq', '--dir', str(other.dir))
        assert result.returncode == 0, result.stderr
        assert not [p.pid for p in mine if running(p)]
    assert all(map(running, theirs))
    assert ask(rabbitmq.port, AMQP_HEADER)[7:11] == b'\x00\x0a\x00\x0a'


@pytest.mark.parametrize('args, words', [
    (['start', 'redis', '--port', '1', '--dir', 'D'], "invalid choice: 'redis'"),
    (['start', 'zookeeper', '--dir', 'D'], 'required: --port'),
    (['start', 'rabbitmq', '--port', '70000', '--dir', 'D'], '--port must be 1-65535'),
    (['stop', 'zookeeper'], 'required: --dir'),
    ([], 'required: COMMAND'),
])
def test_bad_input_is_one_line(tmp_path, provision_cli, args, words):
    result = provision_cli(*[str(tmp_path) if a == 'D' else a for a in args])
    assert result.returncode == 2
    assert result.stdout == '' and len(result.stderr.splitlines()) == 1
    assert words in result.stderr
    assert not list(tmp_path.iterdir())


def test_port_in_use_is_one_line(provisioned, tmp_path, provision_cli):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = provision_cli('start', 'zookeeper', '--port', str(port), '--dir', str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == ['provision: 127.0.0.1:%d is already in use' % port]


def test_install_when_installed_does_nothing_fast(provisioned, provision_cli):
    started = time.monotonic()
    result = provision_cli('install')
    assert result.returncode == 0
    assert result.stdout == 'provision: zookeeper and rabbitmq-server are installed\n'
    assert time.monotonic() - started < 1


def test_status_one_line_each(provisioned, provision_cli):
    lines = provision_cli('status').stdout.splitlines()
    assert [line.split(':')[0] for line in lines] == ['zookeeper', 'rabbitmq-server', 'tmux', 'tmuxinator', 'java']
