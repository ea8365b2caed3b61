"""One node per node.yml: `fannode up` holds its lock while it runs, and whoever asks whether
a node runs (`fannode ps`, `scale`, the TUI's every poll) looks without taking it."""
import fcntl
import os
import subprocess
import sys
import threading
import time

import pytest

from fannode.exceptions import FannodeError
from fannode.node import lockfile
from fannode.node.lockfile import take_lock
from fannode.node import paths
from fannode.node.client import NodeClient

PROBE = '''
import sys
from fannode.node.client import NodeClient
client = NodeClient(sys.argv[1])
assert not client.running
print('probing', flush=True)
while True:
    client.running
'''


def node_file(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    path = tmp_path / 'node.yml'
    path.write_text('instances: {}\n')
    # a socket file as a running node leaves: the probe goes on to the lock
    open(paths.control_endpoint(str(path))[len('ipc://'):], 'w').close()
    return str(path)


def test_a_node_being_looked_for_all_the_time_still_starts(tmp_path, monkeypatch):
    """The look took a shared lock for an instant: an `up` starting then failed with
    "a node is already running"."""
    file = node_file(tmp_path, monkeypatch)
    probe = subprocess.Popen([sys.executable, '-c', PROBE, file], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path)))
    try:
        assert probe.stdout.readline() == 'probing\n'
        for _ in range(3000):
            take_lock(paths.node_path(file, 'lock'), file).close()
            assert probe.poll() is None
    finally:
        probe.kill()
        probe.wait()
        probe.stdout.close()


def test_a_node_holding_the_lock_is_running_and_one_gone_is_not(tmp_path, monkeypatch):
    file = node_file(tmp_path, monkeypatch)
    client = NodeClient(file)
    assert not client.running  # no lock file yet
    lock = take_lock(paths.node_path(file, 'lock'), file)
    assert client.running and client.running  # looking twice changes nothing
    lock.close()  # as when the node's process goes, even with SIGKILL
    assert not client.running


def test_up_waits_out_a_shared_lock_but_not_a_node(tmp_path, monkeypatch):
    """A shared lock is someone's look (fannode before this one looked so): it goes in an
    instant, and `up` waits for it; a node's lock is refused at once."""
    file = node_file(tmp_path, monkeypatch)
    path = paths.node_path(file, 'lock')
    node = take_lock(path, file)
    started = time.monotonic()
    with pytest.raises(FannodeError, match=r'^a node is already running for .* \(pid %d\)$' % os.getpid()):
        take_lock(path, file)
    assert time.monotonic() - started < lockfile.SHARED_WAIT
    node.close()
    look = os.open(path, os.O_RDONLY)
    lockfile._lock(look, lockfile._SET, fcntl.F_RDLCK)
    threading.Timer(0.2, os.close, [look]).start()
    take_lock(path, file).close()
