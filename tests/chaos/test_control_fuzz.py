"""A running node (`fannode up`, a tiny node.yml in a tmp dir) against hostile input on
its control socket: requests with any subject and body, frames that are not requests,
several frames in one message, oversized frames, and bytes that are not ZMTP at all.

After each input: every request the node could read was answered (a REP, or an ERROR
that is a refusal, not an exception of the node's), what it could not read was counted
in `control.dropped`, `fannode ps` still answers (NodeClient, as the CLI does), and the
node runs exactly the processes it ran before, by PID. The fuzz never names a block with
a count other than the one it has, nor a pid of the node's, so no change is legitimate.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import psutil
import pytest
import zmq
from hypothesis import given, strategies as st

from chaostools import CONTEXT, LONG, FANNODE, Procs, base_env, free_port, frame, fuzz, output, short, wait_until
from fannode.core import wire
from fannode.node.client import NodeClient
from fannode.node.control import MAX_REQUEST
from hubinputs import JUNK, VALUES, choose, raw_frames

pytestmark = [pytest.mark.chaos, LONG]

ANSWER = 5.0
NODE_YML = '''registry: hub://127.0.0.1:{port}
instances:
  sleeper:
    command: sleep 1000
    numprocesses: 2
'''


class RunningNode:
    def __init__(self, procs: Procs):
        self.dir = procs.dir
        self.file = self.dir / 'node.yml'
        self.file.write_text(NODE_YML.format(port=free_port()))
        env = dict(base_env(self.dir), XDG_RUNTIME_DIR=str(self.dir), FANNODE_MAX_PROCESSES='8')
        self.proc = procs.spawn([*FANNODE, 'up', '--file', str(self.file)], 'up', env)
        wait_until(lambda: 'cluster ready' in output(self.proc) or self.proc.poll() is not None, 60,
                   message='the node to be ready')
        assert self.proc.poll() is None, output(self.proc)
        self.client = NodeClient(str(self.file), timeout=ANSWER)
        self.endpoint = self.client.endpoint
        self.path = self.endpoint[len('ipc://'):]
        self.before = self.processes()
        self.tree = self.descendants()
        self.dropped = self.ps()['control']['dropped']
        procs.remember(self.proc.pid)

    def ps(self) -> dict:
        assert self.proc.poll() is None, 'the node exited (%s):\n%s' % (self.proc.returncode, output(self.proc)[-3000:])
        return self.client.ps()

    @staticmethod
    def running(ps: dict) -> set[tuple[str, int]]:
        return {(b['name'], p['pid']) for b in ps['blocks'] for p in b['processes']}

    def processes(self) -> set[tuple[str, int]]:
        return self.running(self.ps())

    def descendants(self) -> set[int]:
        return {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}

    def pids(self) -> set[int]:
        return {pid for _, pid in self.before}


@pytest.fixture(scope='module')
def node(tmp_path_factory):
    procs = Procs(tmp_path_factory.mktemp('ctl'))
    with pytest.MonkeyPatch.context() as env:
        env.setenv('XDG_RUNTIME_DIR', str(procs.dir))  # where NodeClient finds the socket
        try:
            yield RunningNode(procs)
        finally:
            procs.cleanup()


# -- inputs ------------------------------------------------------------------------------

NAMES = choose((3, st.sampled_from(['sleeper', 'hub', 'SLEEPER', 'sleeper ', '../sleeper', 'x' * 65, 'y' * 5000,
                                    '', 'sleeper\x00', '\x1b[2J'])), (1, st.text(max_size=20)), (1, JUNK))
# Counts no node may take (negative, not whole numbers, over the node's 8) and the count
# each block has: a no-op. Any other count would be a legitimate change.
BAD_COUNTS = st.sampled_from([-1, 9, 10 ** 6, 2 ** 63, 2 ** 64, 10 ** 400, -10 ** 400, 1.5, 2.0, True, False,
                              '2', None, [2], {'n': 2}]) | st.integers(min_value=9) | st.integers(max_value=-1) | JUNK
VERBS = st.sampled_from(['node.ps', 'node.scale', 'node.restart', 'node.restart_process', 'node.reload'])
SUBJECTS = choose((6, VERBS), (1, st.sampled_from(['node.', 'node.stop', 'node.__init__', 'node.handle', 'ps', '',
                                                   'node.' + 'p' * 300])),
                  (1, st.text(max_size=20).map('node.'.__add__)), (1, JUNK))


CURRENT = {'sleeper': 2, 'hub': 1}  # what each block runs


def changes_something(subject, body, block_pids) -> bool:
    """Whether `body` is a legitimate change after all: not what this fuzz is about."""
    if type(body) is not dict:
        return False
    name, count, pid = body.get('name'), body.get('count'), body.get('pid')
    real = type(name) is str and name in CURRENT
    if subject == 'node.scale' and real and type(count) is int and 0 <= count <= 8:
        return count != CURRENT[name]
    return subject == 'node.restart' and real or subject == 'node.restart_process' and (
        type(pid) is int and pid in block_pids)


@st.composite
def bodies(draw, subject, block_pids, other_pids):
    if draw(st.integers(0, 2)) == 2:
        return draw(VALUES)
    body = {}
    if subject == 'node.scale':
        name = draw(NAMES)
        same = CURRENT.get(name, 2) if type(name) is str else 2
        body = {'name': name, 'count': draw(choose((1, BAD_COUNTS), (1, st.just(same))))}
    elif subject == 'node.restart':
        body = {'name': draw(NAMES)}
    elif subject == 'node.restart_process':  # the node's own pid, the watchdog's, this test's, none
        pid = draw(st.sampled_from([0, -1, 1, os.getpid(), 2 ** 31, 2 ** 63, 10 ** 400, True, '1', None,
                                    *other_pids]) | st.integers() | JUNK)
        body = {'pid': pid}
    for key in draw(st.lists(st.sampled_from(['name', 'count', 'pid', 'extra', '']), max_size=2)):
        body[key] = draw(JUNK)  # what it also carries, or carries instead
    return {} if changes_something(subject, body, block_pids) else body


@st.composite
def messages(draw, block_pids, other_pids):
    """One message, and what it is in words: a request (as NodeClient sends it, or with
    any field wrong), a raw frame, or several frames together."""
    kind = draw(st.sampled_from(['request'] * 4 + ['raw', 'multipart']))
    if kind == 'multipart':
        parts = draw(st.lists(raw_frames('node.ps'), min_size=2, max_size=4))
        return 'frames %s' % short(parts, 200), parts
    if kind == 'raw':
        data = draw(raw_frames('node.ps'))
        return 'frame %s' % short(data, 200), [data]
    subject = draw(SUBJECTS)
    body = draw(bodies(subject, block_pids, other_pids))
    fields = {} if draw(st.integers(0, 3)) < 3 else {'trace_id': draw(JUNK | st.just('')),
                                                      'deadline_ms': draw(JUNK | st.just(0)),
                                                      'headers': draw(JUNK | st.just({}))}
    return 'request %s %s %s' % (short(subject, 60), short(body, 200), short(fields, 200)), [
        frame(subject, body, **fields)[1]]


def expect(message: list[bytes]) -> tuple[int | None, bool]:
    """(the id an answer must carry, or None; whether the node drops and counts it)."""
    if len(message) != 1:
        return None, True
    try:
        msg = wire.decode(message[0])
    except wire.ProtocolError as e:
        return e.id, e.id is None
    return (msg.id, False) if msg.type == wire.REQ else (None, True)


# -- the tests ---------------------------------------------------------------------------

def still_the_same(node: RunningNode, dropped: int, what: str) -> None:
    """The node answers ps, counted what it dropped and runs the processes it ran."""
    wait_until(lambda: node.ps()['control']['dropped'] >= dropped, ANSWER,
               message='control.dropped to count %d after %s' % (dropped, what))
    ps = node.ps()
    node.dropped = ps['control']['dropped']  # counted from here on, whatever this example found
    assert node.dropped == dropped, 'dropped: %d, expected %d after %s' % (node.dropped, dropped, what)
    assert node.running(ps) == node.before, 'processes %s became %s after %s' % (
        sorted(node.before), sorted(node.running(ps)), what)
    assert node.descendants() == node.tree, 'the node\'s process tree changed after %s' % what


@fuzz()
@given(st.data())
def test_whatever_reaches_the_control_socket_ps_answers_and_nothing_changes(node, data):
    others = (node.tree | {node.proc.pid}) - node.pids()  # the watchdog is the node's, no block's
    batch = data.draw(st.lists(messages(node.pids(), sorted(others)), min_size=1, max_size=3), 'messages')
    dealer = CONTEXT.socket(zmq.DEALER)
    dealer.connect(node.endpoint)
    try:
        answers, dropped = [], node.dropped
        for what, message in batch:
            id, drops = expect(message)
            dealer.send_multipart(message)
            dropped += drops
            if id is not None:
                answers.append((id, what))
        replies = read_replies(dealer, {id for id, _ in answers})
        for id, what in answers:
            reply = replies.get(id)
            assert reply is not None, 'no answer within %gs to %s' % (ANSWER, what)
            if reply.type == wire.ERROR:
                error = reply.body if type(reply.body) is dict else {}
                assert not str(error.get('message', '')).startswith('the node failed to handle'), \
                    'an exception of the node\'s on %s: %s' % (what, error)
            else:
                assert reply.type == wire.REP, '%s to %s' % (wire.TYPE_NAMES[reply.type], what)
        still_the_same(node, dropped, '; '.join(what for what, _ in batch))
    finally:
        dealer.close(linger=1000)  # what was sent still reaches the node


def read_replies(dealer: zmq.Socket, ids: set[int]) -> dict[int, wire.Message]:
    """The replies to `ids`, in whatever order they come (ps is answered at once, a
    reload after it), until all came or ANSWER seconds passed."""
    replies: dict[int, wire.Message] = {}
    deadline = time.monotonic() + ANSWER
    while ids - replies.keys() and dealer.poll(max(0, int((deadline - time.monotonic()) * 1000))):
        frames = dealer.recv_multipart()
        assert len(frames) == 1, 'the node answered with %d frames' % len(frames)
        msg = wire.decode(frames[0])
        replies.setdefault(msg.id, msg)
    return replies


@fuzz(0.5)
@given(st.binary(min_size=1, max_size=2000), st.sampled_from(['raw', 'after a greeting', 'oversized']))
def test_foreign_bytes_and_oversized_frames_change_nothing(node, data, how):
    if how == 'oversized':  # libzmq closes the connection unread: neither answered nor counted
        dealer = CONTEXT.socket(zmq.DEALER)
        dealer.connect(node.endpoint)
        try:
            dealer.send(frame('node.ps', {'pad': data * (MAX_REQUEST // len(data) + 1)})[1])
            assert not dealer.poll(100), 'the node read a request over %d bytes' % MAX_REQUEST
        finally:
            dealer.close(linger=1000)
    else:
        with socket.socket(socket.AF_UNIX) as raw:
            raw.settimeout(ANSWER)
            raw.connect(node.path)
            greeting = b'\xff' + b'\x00' * 8 + b'\x7f\x03\x00NULL' + b'\x00' * 16 + b'\x00' * 32
            raw.sendall((greeting if how == 'after a greeting' else b'') + data)
    still_the_same(node, node.dropped, '%s: %s' % (how, short(data, 200)))


def test_the_cli_still_reports_the_node_after_the_fuzz(node):
    result = subprocess.run([*FANNODE, 'ps', '--json', '--file', str(node.file)], capture_output=True, text=True,
                            env=dict(base_env(node.dir), XDG_RUNTIME_DIR=str(node.dir)), timeout=60)
    assert result.returncode == 0, result.stderr
    assert node.running(json.loads(result.stdout)) == node.before
