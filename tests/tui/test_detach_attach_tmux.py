"""`fannode attach` in a real terminal (a private tmux server, 160×45) against a node
started with `fannode up -D`: the dashboard shows its blocks and timeline, `q` detaches and
the node runs on, a second attach's `S` + `y` stops it and every process it had is gone."""
from __future__ import annotations

import json
import os
import shutil

import psutil
import pytest

from conftest import FANNODE, one_line_error, wait_until
from test_top_tmux import Tmux  # imports top_helpers, which puts tests/e2e on the path
from test_detach_node import Project  # noqa: E402 - tests/e2e
from fannode.node.stopnode import alive as running  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    shutil.which('tmux') is None and os.environ.get('CI') != 'true', reason='tmux is not installed')]


ATTACH = [*FANNODE, 'attach']


def joined(tmux: Tmux) -> str:
    """The pane's text with wrapped lines joined (a temp dir's path is long), and its
    history: leaving the dashboard's alternate screen, tmux may scroll the last lines up."""
    return tmux('capture-pane', '-p', '-J', '-S', '-', '-t', tmux.session).stdout


def test_attach_shows_the_dashboard_q_detaches_and_s_stops_the_node(tmp_path):
    project = Project(tmp_path / 'p')
    tmux = Tmux(tmp_path, project.env)
    panes: list[psutil.Process] = []
    try:
        pid, _, _ = project.up()
        wait_until(lambda: project.cli('discover', '--registry', project.hub).stdout == 'Greeting [2]\n',
                   timeout=60, interval=0.3, message='Greeting [2] in discovery')
        node_procs = project.remember(pid)

        first = tmp_path / 'attach1.exit'
        tmux.start(project.dir, ATTACH, first)

        def dashboard() -> bool:
            screen = tmux.screen()
            rows = [line.split() for line in screen.splitlines()]
            return any(r[:2] == ['Greeting', '2/2'] for r in rows if r) and 'cluster ready' in screen \
                and 'q detach' in screen and 'S stop node' in screen
        tmux.wait(dashboard, 'Greeting 2/2, the timeline and the keys')
        panes += tmux.processes()
        assert 'fannode attach: %s (pid %d)' % (project.dir / 'node.yml', pid) in tmux.screen()

        tmux('send-keys', '-t', tmux.session, 'q')
        wait_until(first.exists, timeout=15, message='attach to exit on q')
        assert first.read_text() == '0\n', tmux.screen()
        tmux.wait(lambda: 'keeps running: fannode attach | fannode down' in joined(tmux), 'the detached line',
                  timeout=10, shown=lambda: joined(tmux))
        assert json.loads(project.cli('ps', '--json').stdout)['pid'] == pid
        assert len(running(node_procs)) == len(node_procs)  # nothing of the node stopped

        second = tmp_path / 'attach2.exit'
        tmux.session = 'attach-2'
        tmux.start(project.dir, ATTACH, second)
        wait_until(dashboard, timeout=30, message='the dashboard again')
        panes += tmux.processes()
        tmux('send-keys', '-t', tmux.session, 'S')
        wait_until(lambda: 'Stop the node?' in tmux.screen(), timeout=10, message='the question')
        tmux('send-keys', '-t', tmux.session, 'y')
        wait_until(second.exists, timeout=60, message='attach to exit once the node stopped')
        assert second.read_text() == '0\n', tmux.screen()
        assert 'the node for %s (pid %d) stopped' % (project.dir / 'node.yml', pid) in joined(tmux)
        assert 'Traceback' not in tmux.screen()
        assert running(node_procs) == []
        wait_until(lambda: tmux.show('#{pane_dead}') == '1', timeout=10, message='the pane to end')
        assert running(panes) == []  # both attaches and their shells

        gone = project.cli('attach')
        assert one_line_error(gone, 3) == 'error: no node is running for node.yml (start one with `fannode up`)'
    finally:
        tmux.stop(panes or tmux.processes())
        project.cleanup()
