"""Where `fannode up -D` puts the node's log and pidfile, and how `fannode down` reads them."""
from __future__ import annotations

import os

from fannode.node import detach, stopnode
from fannode.node.logconf import LogSpec


def test_the_log_goes_beside_the_control_socket_or_under_logs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    node_file = tmp_path / 'node.yml'
    node_file.write_text('instances: {}\n')
    beside = detach.log_path(str(node_file), None)
    assert os.path.dirname(beside) == str(tmp_path / 'fannode')
    assert os.path.basename(beside).startswith('node-') and beside.endswith('.log')
    assert detach.pid_path(str(node_file)) == beside[:-len('.log')] + '.pid'
    assert detach.log_path(str(node_file), LogSpec(str(tmp_path / 'logs'))) == str(tmp_path / 'logs' / '_node.log')


def test_a_pidfile_is_read_only_when_it_holds_a_pid(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    node_file = str(tmp_path / 'node.yml')
    assert detach.read_pid(node_file) is None
    with open(detach.pid_path(node_file), 'w') as f:
        f.write('4242\n')
    assert detach.read_pid(node_file) == 4242
    with open(detach.pid_path(node_file), 'w') as f:
        f.write('not a pid')
    assert detach.read_pid(node_file) is None


def test_a_lock_file_names_a_node_only_when_its_process_is_fannode_up(tmp_path):
    lock = tmp_path / 'node.lock'
    lock.write_text(str(os.getpid()))  # pytest: not `fannode up`
    assert stopnode._lock_holder(str(lock)) is None
    lock.write_text('junk')
    assert stopnode._lock_holder(str(lock)) is None
    assert stopnode._lock_holder(str(tmp_path / 'absent')) is None
