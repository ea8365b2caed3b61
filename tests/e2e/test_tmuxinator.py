"""The workshop's tmuxinator sessions, started detached on a private tmux server, checked
the way a user would: `fannode discover`, a request, and what the panes show."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request

import psutil
import pytest

from conftest import ROOT, free_port, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    (shutil.which('tmux') is None or shutil.which('tmuxinator') is None) and os.environ.get('CI') != 'true',
    reason='tmux and tmuxinator are not installed (apt-get install tmux tmuxinator)')]


class Session:
    def __init__(self, name: str, tmp_path):
        self.name = 'fannode-test-%s-%d' % (name, os.getpid())
        self.file = ROOT / 'tmuxinator' / (name + '.yml')
        self.hub = 'hub://127.0.0.1:%d' % free_port()
        self.web_port = free_port()
        self.env = dict(os.environ, TMUX_TMPDIR=str(tmp_path), FANNODE_SESSION=self.name,
                        FANNODE_REGISTRY=self.hub, WEB_PORT=str(self.web_port))
        self.env.pop('TMUX', None)
        self.env.pop('FANNODE_EVENTS', None)

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(['tmux', *args], env=self.env, capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        started = subprocess.run(['tmuxinator', 'start', '-p', str(self.file), '--no-attach'], cwd=ROOT,
                                 env=self.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert started.returncode == 0, started.stdout + started.stderr
        self.tmux('resize-window', '-t', self.name, '-x', '200', '-y', '60')

    def pane(self, title_index: int) -> str:
        return self.tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', '%s:0.%d' % (self.name, title_index)).stdout

    def fannode(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, '-m', 'fannode.cli', *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=30)

    def pids(self) -> list[int]:
        out = self.tmux('list-panes', '-s', '-t', self.name, '-F', '#{pane_pid}').stdout.split()
        return [int(p) for p in out]

    def stop(self) -> None:
        procs = []
        for pid in self.pids():
            try:
                procs += psutil.Process(pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        self.tmux('kill-server')
        gone, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            proc.kill()
        assert not alive, 'left running after the session ended: %s' % alive


@pytest.fixture
def session(tmp_path):
    made = []

    def start(name: str) -> Session:
        s = Session(name, tmp_path)
        made.append(s)
        s.start()
        return s
    yield start
    for s in made:
        s.stop()


def test_greeting_session_runs_one_instance_and_answers(session):
    s = session('greeting')
    wait_until(lambda: s.fannode('discover').stdout == 'Greeting [1]\n', timeout=30, message='Greeting [1]')
    result = s.fannode('request', 'Greeting.greet', '{"name": "Joe"}')
    assert (result.returncode, result.stdout) == (0, 'Hi, Joe!\n')
    # as the README shows: the printed line, with the request's trace id
    wait_until(lambda: re.search(r'INFO +Greeting print \[[0-9a-f]{32}\] Saying hi to Joe', s.pane(2)),
               message='the greeting pane to print')


def test_greeting_listen_session_hears_the_emitted_event(session):
    s = session('greeting-listen')
    wait_until(lambda: s.fannode('discover').stdout == 'Greeting [2]\nListen [1]\n', timeout=30,
               message='Greeting [2], Listen [1]')
    emitted = s.fannode('emit', 'greeted', '{"name": "Joe"}')
    assert emitted.returncode == 0 and re.fullmatch(r'emitted greeted [0-9a-f]{32} \(trace [0-9a-f]{32}\)\n',
                                                    emitted.stderr), emitted.stderr
    wait_until(lambda: 'Somebody greeted Joe' in s.pane(4), message='the listen pane to print')
    for _ in range(8):  # round robin: both greeting panes answer
        assert s.fannode('request', 'Greeting.greet', '{"name": "Ann"}').stdout == 'Hi, Ann!\n'
    wait_until(lambda: 'Saying hi to Ann' in s.pane(2) and 'Saying hi to Ann' in s.pane(3),
               message='both greeting panes to print')


def test_all_session_serves_http_through_every_service(session):
    s = session('all')
    wait_until(lambda: s.fannode('discover').stdout == 'Greeting [1]\nListen [1]\nWeb [1]\n', timeout=30,
               message='Greeting, Listen, Web')
    with urllib.request.urlopen('http://127.0.0.1:%d/greet?name=joe' % s.web_port, timeout=10) as r:
        assert (r.status, r.read()) == (200, b'Hi, joe!')
        trace_id = r.headers['X-Trace-Id']
    wait_until(lambda: 'About to greet joe' in s.pane(2) and 'Saying hi to joe' in s.pane(3)
               and 'Somebody greeted joe' in s.pane(4), message='web, greeting and listen panes to print')
    assert all('[%s]' % trace_id in s.pane(i) for i in (2, 3, 4))  # one trace id across the three


def test_node_session_runs_the_whole_cluster_and_stops_it_with_the_session(session):
    s = session('node')
    wait_until(lambda: s.fannode('discover').stdout == 'Greeting [3]\nListen [4]\nWeb [2]\n', timeout=60,
               message='Greeting [3], Listen [4], Web [2]')
    with urllib.request.urlopen('http://127.0.0.1:%d/greet?name=joe' % s.web_port, timeout=10) as r:
        assert r.read() == b'Hi, joe!'
    wait_until(lambda: 'Somebody greeted joe' in s.pane(1), message='the node pane to show Listen')
    # the tail pane: the request's lines from web, greeting and listen, with one trace id
    tail = re.compile(r'^[\d:.]+ (Web|Greeting|Listen) \w+ INFO +(?:\S+ )?\[([0-9a-f]{8})\] '
                      r'(GET /greet\?name=joe 200|Saying hi to joe|Somebody greeted joe)', re.M)

    def request_in_tail():
        found = tail.findall(s.pane(2))
        return len(found) == 3 and len({trace for _, trace, _ in found}) == 1 and found
    found = wait_until(request_in_tail, timeout=15, message='the tail pane to show the request')
    assert {service for service, _, _ in found} == {'Web', 'Greeting', 'Listen'}
