"""`fannode top` in a real terminal: a pane of a private tmux server, 160×45, beside a node
running Greeting ×3. `+` scales it to 4 (as `fannode discover` sees), `q` quits cleanly."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

import psutil
import pytest

from conftest import FANNODE, wait_until
from top_helpers import Node

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    shutil.which('tmux') is None and os.environ.get('CI') != 'true', reason='tmux is not installed')]


class Tmux:
    """A tmux server of our own (its socket under the test's tmp dir), one session."""

    def __init__(self, tmp_path, env: dict):
        self.env = dict(env, TMUX_TMPDIR=str(tmp_path), TERM='xterm-256color')
        self.env.pop('TMUX', None)
        self.session = 'top-%d' % os.getpid()

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(['tmux', '-L', 'fannode-top', *args], env=self.env, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    def start(self, cwd, command: list[str], status_file) -> None:
        """Run `command` in the pane; a shell around it writes its exit status to
        `status_file` (tmux itself does not always learn it). The pane stays after it
        exits (remain-on-exit), so what it left on the screen can be read."""
        wrapped = ['sh', '-c', '"$@"; echo $? > %s' % status_file, 'sh', *command]
        result = self('new-session', '-d', '-s', self.session, '-x', '160', '-y', '45', '-c', str(cwd),
                      'sleep 3600', ';', 'set-option', '-t', self.session, 'remain-on-exit', 'on', ';',
                      'respawn-pane', '-k', '-t', self.session, *wrapped)
        assert result.returncode == 0, result.stderr

    def processes(self) -> list[psutil.Process]:
        pid = self.show('#{pane_pid}')
        try:
            return [psutil.Process(int(pid)), *psutil.Process(int(pid)).children(recursive=True)]
        except (ValueError, psutil.NoSuchProcess):
            return []

    def screen(self) -> str:
        return self('capture-pane', '-p', '-t', self.session).stdout

    def wait(self, predicate, message: str, timeout: float = 30.0, shown=None) -> None:
        """wait_until, and on a timeout what the pane shows (or `shown()`) in the error."""
        try:
            wait_until(predicate, timeout=timeout, message=message)
        except AssertionError as e:
            raise AssertionError('%s; the pane shows:\n%s' % (e, (shown or self.screen)())) from None

    def show(self, fmt: str) -> str:
        return self('display-message', '-p', '-t', self.session, fmt).stdout.strip()

    def stop(self, procs: list[psutil.Process]) -> None:
        self('kill-server')
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
                proc.wait(5)
            except psutil.NoSuchProcess:
                pass


def test_top_in_tmux_shows_greeting_scales_it_with_plus_and_quits_on_q(tmp_path):
    node = Node(tmp_path, greeting=3)
    tmux = Tmux(tmp_path, node.env)
    exit_status = tmp_path / 'top.exit'
    procs: list[psutil.Process] = []
    try:
        node.wait_ready()
        tmux.start(tmp_path, [*FANNODE, 'top', '--file', 'node.yml'], exit_status)
        assert tmux.show('#{window_width}x#{window_height}') == '160x45'

        def greeting_rows() -> bool:
            screen = tmux.screen()
            rows = [line.split() for line in screen.splitlines()]
            return any(r[:2] == ['Greeting', '3/3'] for r in rows if r) and 'q quit' in screen and \
                sum(1 for r in rows if r and r[0].startswith('greeting.') and 'running' in r) == 3
        tmux.wait(greeting_rows, 'Greeting 3/3 and three greeting rows')
        procs = tmux.processes()  # the shell and top, killed by pid at the end whatever happens
        screen = tmux.screen()
        assert 'node node.yml (pid %d)' % node.proc.pid in screen
        assert 'hub (node)' in screen  # the node's other block

        tmux('send-keys', '-t', tmux.session, '+')
        wait_until(lambda: 'greeting: 3 → 4 processes' in tmux.screen(), timeout=10,
                   message='the status line to say it')
        wait_until(lambda: node.cli('discover').stdout == 'Greeting [4]\n', timeout=30,
                   interval=0.3, message='fannode discover to show Greeting [4]')
        wait_until(lambda: 'Greeting                    4/4' in tmux.screen(), timeout=10, message='top to show 4/4')

        tmux('send-keys', '-t', tmux.session, 'q')
        wait_until(exit_status.exists, timeout=10, message='top to exit')
        assert exit_status.read_text() == '0\n', tmux.screen()
        wait_until(lambda: tmux.show('#{pane_dead}') == '1', timeout=10, message='the pane to end')
        assert 'Traceback' not in tmux.screen()
        assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        tmux.stop(procs or tmux.processes())
        node.stop()
