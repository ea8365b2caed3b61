"""The review fixes of FixD that need no real node: a detached node's pidfile is its own
to write, the node.timeline reply names the node's pid and `fannode attach` ends on
another, a second SIGTERM is the same graceful stop (a second Ctrl-C kills)."""
from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from fannode.exceptions import FannodeError
from fannode.node import detach, stopnode
from fannode.node import timeline as tl
from fannode.node.supervisor import Node
from fannode.tui.remote import RemoteFeed


class FakeClient:
    """The control socket of a node that answers with `pid`."""
    pid = 0

    def __init__(self, node_file, timeout=None):
        self.running = True

    def ps(self, timeout):
        return {'pid': FakeClient.pid}


def test_the_command_waits_for_the_answer_and_never_writes_the_pidfile(tmp_path, monkeypatch):
    """A node stopped right after it answered (its at_exit found no pidfile) leaves none."""
    from fannode.node import client
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    monkeypatch.setattr(client, 'NodeClient', FakeClient)
    node_file = str(tmp_path / 'node.yml')
    FakeClient.pid = 999_999  # a node that has exited meanwhile
    read, write = os.pipe()
    try:
        os.write(write, b'pid 999999\n')
        assert detach._wait_started(node_file, read, 'node.log') == 0
    finally:
        os.close(read)
        os.close(write)
    assert not os.path.exists(detach.pid_path(node_file))


def test_a_detached_node_writes_its_pidfile_once_it_holds_the_lock(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    node_file = str(tmp_path / 'node.yml')
    path = detach.pid_path(node_file)
    detach.holds_lock()  # not detached: nothing
    assert not os.path.exists(path)
    monkeypatch.setattr(detach, '_pidfile', path)
    detach.holds_lock()
    assert detach.read_pid(node_file) == os.getpid()
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'


def test_the_pid_a_node_answers_with_is_read_once_for_down_and_up_detach():
    assert detach.answering(SimpleNamespace(ps=lambda timeout: {'pid': 12}), 1.0) == 12
    with pytest.raises(FannodeError, match='answered without its pid'):
        detach.answering(SimpleNamespace(ps=lambda timeout: {'pid': None}), 1.0)
    assert [stopnode.left(n) for n in (1, 3)] == ['stopping: 1 process left', 'stopping: 3 processes left']


def test_the_timeline_reply_names_the_nodes_pid():
    timeline = tl.Timeline()
    timeline.record('web.1 started (pid 5)')
    reply = tl.verb(timeline, {'since': 0})
    assert reply['pid'] == os.getpid() and reply['cursor'] == 1


def test_attach_ends_when_the_node_answering_has_another_pid_whatever_its_cursor():
    feed = RemoteFeed('node.yml', 'hub://127.0.0.1:1', pid=100)
    entry = {'id': 41, 'time': 1.0, 'block': '', 'kind': 'started', 'text': 'x'}
    assert feed.take_timeline({'cursor': 41, 'entries': [entry], 'pid': 100}) == (entry,)
    with pytest.raises(FannodeError, match=r'another node \(pid 200\) runs node.yml now'):
        feed.take_timeline({'cursor': 60, 'entries': [dict(entry, id=60)], 'pid': 200})  # a newer node, past 41
    assert feed.cursor == 41


def stopping_node():
    said = []
    node = SimpleNamespace(stop_requested=SimpleNamespace(flag=False), kill_now=False, killed=0,
                           printer=SimpleNamespace(event=lambda text, *_: said.append(text)))
    node.stop_requested.is_set = lambda: node.stop_requested.flag
    node.stop_requested.set = lambda: setattr(node.stop_requested, 'flag', True)
    node.kill_all = lambda: setattr(node, 'killed', node.killed + 1)
    return node, said


@pytest.mark.parametrize('second, kills', [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGHUP, True)])
def test_a_second_sigterm_is_the_same_graceful_stop_and_a_second_ctrl_c_kills(second, kills):
    node, said = stopping_node()
    Node.on_signal(node, signal.SIGTERM)  # `fannode down`, or the dashboard's stop
    assert node.stop_requested.flag and said == ['stopping: services finish running work (signal again to kill now)']
    Node.on_signal(node, second)  # a second `fannode down`, or Ctrl-C
    assert (node.kill_now, node.killed) == ((True, 1) if kills else (False, 0))
    assert len(said) == 1
