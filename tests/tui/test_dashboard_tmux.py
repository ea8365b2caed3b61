"""`fannode up` in a real terminal (a private tmux server, 160×45) is the node's dashboard:
every block with its count, `+` scales (as `fannode discover` sees), the log pane shows a
curl's lines with its trace id, `t` shows that trace's spans, `q` + `y` stops the cluster:
exit 0 and no process left, by pid."""
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
from test_observability import greet  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    shutil.which('tmux') is None and os.environ.get('CI') != 'true', reason='tmux is not installed')]


def rows(screen: str) -> list[list[str]]:
    return [line.split() for line in screen.splitlines() if line.strip()]


def test_up_in_a_terminal_is_the_dashboard_scales_shows_logs_and_traces_and_stops_on_q(tmp_path):
    node = E2ENode(tmp_path)
    node.env.pop('CI', None)  # the dashboard is for terminals without $CI
    node.write(workshop(node.hub, node.web_port, greeting=2, listen=1, web=1))
    editor = tmp_path / 'editor.sh'  # $EDITOR: a user who sets listen to 2 processes and saves
    editor.write_text('#!/bin/sh\nsed -i "/^  listen:/,/numprocesses/ s/numprocesses: 1/numprocesses: 2/" "$1"\n')
    editor.chmod(0o755)
    node.env['EDITOR'] = str(editor)
    tmux = Tmux(tmp_path, node.env)
    exit_status = tmp_path / 'up.exit'
    procs: list[psutil.Process] = []

    def screen_has(*texts: str):
        return lambda: all(t in tmux.screen() for t in texts)

    try:
        tmux.start(tmp_path, [*FANNODE, 'up'], exit_status)
        assert tmux.show('#{window_width}x#{window_height}') == '160x45'

        def every_block() -> bool:
            shown = {tuple(r[:2]) for r in rows(tmux.screen())}
            return {('Greeting', '2/2'), ('Listen', '1/1'), ('Web', '1/1')} <= shown and \
                any(r[:3] == ['hub', '(node)', '1/1'] for r in rows(tmux.screen()))
        tmux.wait(every_block, 'every block with its count', timeout=90)
        tmux.wait(screen_has('cluster ready', 'node timeline'), 'the timeline to say the cluster is ready')
        procs = tmux.processes()  # the shell, the node and its children: each checked by pid at the end
        assert len(procs) >= 7, procs  # sh, fannode up, the watchdog, hub, greeting ×2, listen, web

        assert rows(tmux.screen())[2][0] == 'Greeting'  # the first row
        tmux('send-keys', '-t', tmux.session, 'Home')  # the cursor stays on the row it was on: hub's, at first
        tmux('send-keys', '-t', tmux.session, '+')
        tmux.wait(screen_has('greeting: 2 → 3 processes'), 'the timeline to say the scale')
        wait_until(lambda: 'Greeting [3]' in node.cli('discover').stdout, timeout=30, interval=0.3,
                   message='fannode discover to show Greeting [3]')

        tmux('send-keys', '-t', tmux.session, 'e')  # the dashboard suspended, the editor run, the edit applied
        tmux.wait(screen_has('node.yml changed: listen'), 'the timeline to say the edit was applied')
        wait_until(lambda: 'Listen [2]' in node.cli('discover').stdout, timeout=30, interval=0.3,
                   message='fannode discover to show Listen [2]')

        trace_id = greet(node.web_port, 'Joe')
        tmux('send-keys', '-t', tmux.session, 'l')
        tmux.wait(screen_has('logs of Greeting'), 'the log pane')
        tmux('send-keys', '-t', tmux.session, '/')
        tmux.wait(screen_has('search the lines shown'), 'the search box')
        tmux('send-keys', '-t', tmux.session, '-l', trace_id)
        tmux('send-keys', '-t', tmux.session, 'Enter')
        tmux.wait(screen_has('search: ' + trace_id), 'the search applied')
        tmux.wait(lambda: [r for r in rows(tmux.screen()) if trace_id[:8] in r and 'Joe' in ' '.join(r)],
             "the curl's Greeting line with its trace id")
        assert all(trace_id[:8] in r for r in rows(tmux.screen()) if 'Joe' in ' '.join(r))

        tmux('send-keys', '-t', tmux.session, 't')
        tmux.wait(screen_has('Greeting.greet', 'GET /greet'), 'the span tree of the trace')

        tmux('send-keys', '-t', tmux.session, 'Escape')
        tmux('send-keys', '-t', tmux.session, 'Escape')
        tmux.wait(screen_has('node timeline'), 'the main view again')
        tmux('send-keys', '-t', tmux.session, 'q')
        tmux.wait(screen_has('Stop the cluster?'), 'the question')
        tmux('send-keys', '-t', tmux.session, 'y')
        tmux.wait(exit_status.exists, 'fannode up to exit', timeout=60)
        assert exit_status.read_text() == '0\n', tmux.screen()
        tmux.wait(lambda: tmux.show('#{pane_dead}') == '1', 'the pane to end')
        assert 'Traceback' not in tmux.screen()
        assert 'node stopped' in tmux.screen()  # the end of the timeline, on the terminal again
        tmux.wait(lambda: not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
             'every process of the node to be gone', timeout=20)
    finally:
        tmux.stop(procs or tmux.processes())
