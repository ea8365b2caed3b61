"""`e` in `fannode up`'s dashboard (a real terminal: a private tmux server) runs $EDITOR with
the terminal in normal mode: the editor's user pressing Ctrl-C or Ctrl-\\ signals fannode up
too (same process group). The node must run on: the cluster stays up, the saved edit is
applied, and `q` + `y` still stops it with exit 0 and no process left."""
from __future__ import annotations

import os
import shutil
import sys

import psutil
import pytest

from conftest import FANNODE, TESTS, wait_until
from test_top_tmux import Tmux
from top_helpers import E2ENode

sys.path.insert(0, str(TESTS / 'e2e'))
from test_node import workshop  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    shutil.which('tmux') is None and os.environ.get('CI') != 'true', reason='tmux is not installed')]

SIGINT_BIT, SIGQUIT_BIT = 1 << 1, 1 << 2  # /proc/<pid>/status SigIgn: bit n-1 for signal n


def test_ctrl_c_and_ctrl_backslash_inside_the_editor_do_not_stop_the_cluster(tmp_path):
    node = E2ENode(tmp_path)
    node.env.pop('CI', None)
    node.write(workshop(node.hub, node.web_port, greeting=1, listen=1, web=1))
    ignored = tmp_path / 'editor.sigign'
    editor = tmp_path / 'editor.sh'  # Ctrl-C and Ctrl-\ to fannode up while editing, then listen: 2, saved
    editor.write_text('#!/bin/sh\n'
                      'grep SigIgn /proc/$$/status > %s\n'
                      'kill -INT $PPID\nkill -QUIT $PPID\nkill -INT $PPID\nsleep 0.5\n'
                      'sed -i "/^  listen:/,/numprocesses/ s/numprocesses: 1/numprocesses: 2/" "$1"\n' % ignored)
    editor.chmod(0o755)
    node.env['EDITOR'] = str(editor)
    tmux = Tmux(tmp_path, node.env)
    exit_status = tmp_path / 'up.exit'
    procs: list[psutil.Process] = []

    try:
        tmux.start(tmp_path, [*FANNODE, 'up'], exit_status)
        tmux.wait(lambda: 'cluster ready' in tmux.screen() and 'node timeline' in tmux.screen(),
             'the cluster to be ready', timeout=90)
        procs = tmux.processes()
        tmux('send-keys', '-t', tmux.session, 'e')
        tmux.wait(lambda: 'node.yml changed: listen' in tmux.screen(), 'the edit applied', timeout=60)
        wait_until(lambda: 'Listen [2]' in node.cli('discover').stdout, timeout=30, interval=0.3,
                   message='fannode discover to show Listen [2]')
        screen = tmux.screen()
        assert 'stopping' not in screen and not exit_status.exists(), screen  # the signals stopped nothing
        assert 'Greeting [1]' in node.cli('discover').stdout
        mask = int(ignored.read_text().split()[1], 16)
        assert not mask & (SIGINT_BIT | SIGQUIT_BIT)  # the editor gets its own Ctrl-C as any program does

        tmux('send-keys', '-t', tmux.session, 'q')
        tmux.wait(lambda: 'Stop the cluster?' in tmux.screen(), 'the question')
        tmux('send-keys', '-t', tmux.session, 'y')
        tmux.wait(exit_status.exists, 'fannode up to exit', timeout=60)
        assert exit_status.read_text() == '0\n', tmux.screen()
        assert 'Traceback' not in tmux.screen()
        tmux.wait(lambda: not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
             'every process of the node to be gone', timeout=20)
    finally:
        tmux.stop(procs or tmux.processes())
