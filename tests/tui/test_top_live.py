"""`fannode top` on real clusters, driven with Pilot: a hub with instances started by
hand (no node), and a node (`fannode up`) to scale and restart through."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from top_helpers import Node, cell, column, run, table_rows, until

from fannode.tui.app import TopApp
from fannode.tui.source import TopSource

pytestmark = pytest.mark.e2e

# Calls Greeting about every 10 ms until the test leaves the file argv[1] (at most argv[2] s).
LOAD = '''
import os, sys
import fannode
from fannode.testing import wait_until
greeting = fannode.proxy('Greeting', timeout=2)

def greeted_and_told_to_stop():
    greeting.greet(name='top')
    return os.path.exists(sys.argv[1])

wait_until(greeted_and_told_to_stop, float(sys.argv[2]), 'the test to stop the load', interval=0.01)
'''


def value(app, key: str, column: str) -> str:
    return cell(app, key, column) if key in table_rows(app) else ''


def number(app, key: str, column: str) -> float:
    text = value(app, key, column)
    return float(text) if text.replace('.', '', 1).isdigit() else -1.0


@pytest.fixture
def top(monkeypatch, tmp_path):
    """top(registry_url, node_file) → a started TopSource and its app; stopped after."""
    made = []

    def make(url: str, node_file: str, interval: float = 0.5):
        monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))  # where nodes of this test keep their socket
        source = TopSource(url, node_file, interval)
        source.start()
        made.append(source)
        return TopApp(source)
    yield make
    for source in made:
        source.stop()
        assert not source._thread.is_alive()


def test_live_numbers_from_instances_on_a_hub_without_a_node(cluster, top, tmp_path):
    cluster.start_hub()
    pids = {cluster.start_instance().pid, cluster.start_instance().pid}
    stop = tmp_path / 'load.stop'
    load = subprocess.Popen([sys.executable, '-c', LOAD, str(stop), '60'], env=cluster.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app = top(cluster.url, str(tmp_path / 'node.yml'))

    async def test(pilot):
        await until(pilot, lambda: value(app, 's:Greeting', 'count') == '2/2', message='Greeting 2/2')
        await until(pilot, lambda: number(app, 's:Greeting', 'rps') > 5, message='calls per second')
        rows = {k: r for k, r in table_rows(app).items() if k.startswith('i:Greeting:')}
        assert {int(r[2]) for r in rows.values()} == pids
        for r in rows.values():
            assert r[3] == socket.gethostname() and r[4] == 'running' and r[5].endswith('s')
            assert float(r[8]) > 10  # rss MiB
        assert 'no node for' in str(app.main.query_one('#summary').render())
        await pilot.press('plus')
        await until(pilot, lambda: 'no node running for' in str(app.main.query_one('#status').render()),
                    message='the status line to say there is no node')
        stopped = min(pids)
        os.kill(stopped, signal.SIGSTOP)  # listed a little longer, but answers nothing
        try:
            key = next(k for k, r in rows.items() if int(r[2]) == stopped)
            await until(pilot, lambda: value(app, key, 'state') == 'unresponsive', timeout=5,
                        message='the stopped instance to be unresponsive')
            await pilot.press('down')  # the app answers keys meanwhile
            assert app.main.table.cursor_row == 1
        finally:
            os.kill(stopped, signal.SIGCONT)
        await pilot.press('q')
    try:
        run(app, test)
    finally:
        stop.touch()
        try:
            load.wait(timeout=5)
        except subprocess.TimeoutExpired:
            load.kill()
            load.wait()


def test_plus_minus_and_restarts_through_a_running_node(top, tmp_path):
    node = Node(tmp_path, greeting=2)
    try:
        node.wait_ready()
        app = top(node.hub, str(node.file))

        async def test(pilot):
            await until(pilot, lambda: value(app, 's:Greeting', 'count') == '2/2' and 'b:hub' in table_rows(app),
                        message='Greeting 2/2 and the hub block')
            assert 'node %s (pid %d)' % (node.file, node.proc.pid) in str(app.main.query_one('#summary').render())
            assert app.main.selected().key == 's:Greeting'
            await pilot.press('plus', 'plus')  # quicker than a refresh: 2 → 3, then 3 → 4
            await until(pilot, lambda: len(node.pids('Greeting')) == 4, message='four Greeting instances')
            await until(pilot, lambda: value(app, 's:Greeting', 'count') == '4/4', message='Greeting 4/4 shown')
            assert str(app.main.query_one('#status').render()) == 'greeting: 3 → 4 processes'
            await pilot.press('minus', 'minus')
            await until(pilot, lambda: len(node.pids('Greeting')) == 2, message='back to two')

            before = node.pids('Greeting')
            await pilot.press('down')  # greeting.1
            victim = app.main.selected().pid
            assert victim in before
            await pilot.press('r')
            await until(pilot, lambda: victim not in node.pids('Greeting') and len(node.pids('Greeting')) == 2,
                        message='greeting.1 replaced')
            assert 'greeting.1 (pid %d) restarting' % victim in node.output() or \
                'restarting pid %d' % victim in node.output()

            before = node.pids('Greeting')
            await pilot.press('R')  # the service of the selected instance: every process
            await until(pilot, lambda: len(node.pids('Greeting')) == 2 and not (node.pids('Greeting') & before),
                        timeout=30, message='both Greeting instances restarted')
            await until(pilot, lambda: str(app.main.query_one('#status').render()) == 'greeting restarted',
                        message='the status line to say so')
            await pilot.press('q')
        run(app, test)
    finally:
        node.stop()


def test_the_log_pane_and_trace_view_on_a_running_node(top, tmp_path):
    """Through the cluster's log pipeline: a request's printed line in the pane, its trace
    (the RPC span beside the line) one Enter away."""
    node = Node(tmp_path, greeting=1)
    try:
        node.wait_ready()
        app = top(node.hub, str(node.file))
        trace_id = 'feed' * 8

        async def test(pilot):
            await until(pilot, lambda: 's:Greeting' in table_rows(app), message='the Greeting row')
            await pilot.press('l')
            logs = app.screen.table
            await until(pilot, lambda: any('serving Greeting' in m for m in column(logs, 'msg')),
                        message="the instance's history")
            result = node.cli('request', 'Greeting.greet', '{"name": "Ann"}', '--trace-id', trace_id)
            assert result.returncode == 0, result.stderr
            await until(pilot, lambda: 'Saying hi to Ann' in column(logs, 'msg'), message='the printed line')
            line = column(logs, 'msg').index('Saying hi to Ann')
            assert column(logs, 'trace')[line] == trace_id[:8]
            logs.move_cursor(line)
            await pilot.press('enter')
            spans = app.screen.query_one('#spans')
            await until(pilot, lambda: spans.row_count >= 1, message='the trace')
            assert column(spans, 'name')[0] == 'Greeting.greet' and column(spans, 'status')[0] == 'ok'
            assert column(app.screen.query_one('#trace-logs'), 'msg') == ['Saying hi to Ann']
            await pilot.press('q')
        run(app, test)
    finally:
        node.stop()
