"""`fannode up -D` and `fannode down` with real processes: the command returns with the
node running headless (ps answers, services discoverable, output in the log file), a
second one is refused, down stops every process the node had (checked by pid, the
watchdog too), two nodes in two directories at once, down with no node exits 3, and a
stop that takes longer than --timeout is finished with SIGKILL."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import FANNODE, ROOT, free_port, one_line_error, wait_until
from fannode.node.stopnode import alive

pytestmark = pytest.mark.e2e

STARTED = re.compile(r'^node started \(pid (\d+)\); logs: (\S+); fannode attach \| fannode ps \| fannode down$')


def greeting_yml(hub: str, extra: str = '') -> str:
    return f'''registry: {hub}
env:
  PYTHONPATH: {ROOT / 'services'}
instances:
  greeting:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
    numprocesses: 2
  family:
    command: sh -c "sleep 1000 & sleep 1000 & wait"
{extra}'''


class Project:
    """A directory with a node.yml, and what `fannode` commands run there get. Every
    process seen under a node it started is SIGKILLed by pid at the end."""

    def __init__(self, directory: Path, text: str | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.hub = 'hub://127.0.0.1:%d' % free_port()
        (directory / 'node.yml').write_text(text if text is not None else greeting_yml(self.hub))
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(directory),
                        XDG_STATE_HOME=str(directory / 'state'))
        for key in ('FANNODE_REGISTRY', 'FANNODE_EVENTS', 'TMUX'):
            self.env.pop(key, None)
        self.seen: list[psutil.Process] = []

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run([*FANNODE, *args], cwd=self.dir, env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def up(self) -> tuple[int, Path, float]:
        """`fannode up -D`: the node's pid, its log file, and how long the command took."""
        started = time.monotonic()
        result = self.cli('up', '-D')
        took = time.monotonic() - started
        assert result.returncode == 0, result.stdout + result.stderr
        match = STARTED.match(result.stdout.strip())
        assert match, result.stdout
        pid = int(match.group(1))
        self.remember(pid)
        return pid, Path(match.group(2)), took

    def remember(self, pid: int) -> list[psutil.Process]:
        try:
            node = psutil.Process(pid)
            procs = [node, *node.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        self.seen += procs
        return procs

    def cleanup(self) -> None:
        for proc in self.seen:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass


@pytest.fixture
def projects():
    made: list[Project] = []
    yield lambda directory, text=None: made.append(Project(directory, text)) or made[-1]
    for project in made:
        project.cleanup()


def test_up_detach_returns_with_the_node_running_and_down_stops_every_process(tmp_path, projects):
    project = projects(tmp_path / 'one')
    pid, log, took = project.up()
    assert took < 20, 'fannode up -D took %.1fs' % took  # it returns once the node answers, not once ready

    ps = json.loads(project.cli('ps', '--json').stdout)
    assert ps['pid'] == pid
    assert ps['file'] == str(project.dir / 'node.yml')
    node = psutil.Process(pid)
    assert node.ppid() == 1 or node.ppid() != os.getpid()  # not our child: the command's grandchild
    assert os.getsid(pid) != os.getsid(0)  # a session of its own, no terminal
    runtime = project.dir / 'fannode'
    assert (runtime / [p for p in os.listdir(runtime) if p.endswith('.pid')][0]).read_text() == '%d\n' % pid
    assert log.parent == runtime and log.name.startswith('node-') and log.suffix == '.log'

    def discovered() -> bool:
        found = project.cli('discover', '--registry', project.hub)
        return found.stdout == 'Greeting [2]\n'
    wait_until(discovered, timeout=60, interval=0.3, message='Greeting [2] in discovery')
    wait_until(lambda: 'cluster ready' in log.read_text(), timeout=30, message='the log file to say ready')
    assert 'greeting.1 started (pid' in log.read_text()

    procs = project.remember(pid)
    names = [' '.join(p.cmdline()) for p in procs]
    assert any('watchdog.py' in n for n in names), names
    assert sum(1 for n in names if n == 'sleep 1000') == 2  # what `family` started, in its group
    assert len(procs) >= 1 + 1 + 1 + 2 + 1 + 2  # node, watchdog, hub, greeting ×2, sh, sleep ×2

    again = project.cli('up', '-D')
    assert one_line_error(again, 1) == 'error: a node is already running for %s (pid %d)' % (project.dir / 'node.yml', pid)
    assert project.cli('ps', '--json').returncode == 0  # the second one took nothing from the first

    no_terminal = project.cli('attach')
    assert one_line_error(no_terminal, 2).startswith('error: fannode attach needs a terminal')

    down = project.cli('down', '--json')
    assert down.returncode == 0, down.stderr
    done = json.loads(down.stdout)
    assert done['pid'] == pid and done['killed'] is False and done['processes'] >= len(procs)
    assert alive(procs) == []  # every pid the node had, the watchdog's too
    assert not [p for p in os.listdir(runtime) if p.endswith(('.pid', '.control', '.lock'))]
    assert 'node stopped' in log.read_text()

    gone = project.cli('down')
    assert one_line_error(gone, 3) == 'error: no node is running for node.yml (start one with `fannode up`)'
    as_json = project.cli('down', '--json')
    one_line_error(as_json, 3)
    assert json.loads(as_json.stdout)['error']['type'] == 'unavailable'


def test_two_nodes_in_two_directories_run_at_once(tmp_path, projects):
    first, second = projects(tmp_path / 'a'), projects(tmp_path / 'b')
    second.env = first.env = dict(first.env, XDG_RUNTIME_DIR=str(tmp_path))  # one runtime dir, two sockets
    pids = [first.up()[0], second.up()[0]]
    assert pids[0] != pids[1]
    for project, pid in zip((first, second), pids):
        ps = json.loads(project.cli('ps', '--json').stdout)
        assert (ps['pid'], ps['file']) == (pid, str(project.dir / 'node.yml'))
    procs = [first.remember(pids[0]), second.remember(pids[1])]

    out = first.cli('down')
    assert out.returncode == 0, out.stderr
    assert re.match(r'stopped node %s \(pid %d\): \d+ processes gone in [\d.]+s$' % (
        re.escape(str(first.dir / 'node.yml')), pids[0]), out.stdout.strip())
    assert alive(procs[0]) == []
    assert json.loads(second.cli('ps', '--json').stdout)['pid'] == pids[1]  # the other one runs on
    assert second.cli('down').returncode == 0
    assert alive(procs[1]) == []


def test_down_kills_what_does_not_stop_within_its_timeout(tmp_path, projects):
    project = projects(tmp_path, '''instances:
  stubborn:
    command: sh -c "trap '' TERM; sleep 1000 & wait"
    stop_timeout: 600
''')
    pid, _, _ = project.up()
    wait_until(lambda: len(project.remember(pid)) >= 4, timeout=30, message='sh and its sleep')
    procs = project.remember(pid)
    down = project.cli('down', '--timeout', '2.5')
    assert down.returncode == 0, down.stderr
    assert re.search(r'^stopping: \d+ process(es)? left$', down.stderr, re.M), down.stderr
    assert down.stdout.startswith('killed what was left after 2.5s node %s (pid %d)' % (project.dir / 'node.yml', pid))
    assert alive(procs) == []


def test_up_detach_says_why_the_node_did_not_start(tmp_path, projects):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        project = projects(tmp_path, '''sockets:
  web: {host: 127.0.0.1, port: %d}
instances:
  app:
    command: sleep 1000
    sockets: [web]
''' % port)
        result = project.cli('up', '-D')
    message = one_line_error(result, 1)
    assert message.startswith("error: cannot listen on socket 'web' (127.0.0.1:%d): " % port), message
    assert project.cli('ps').returncode == 3
    assert not [p for p in os.listdir(tmp_path / 'fannode') if p.endswith(('.pid', '.lock'))]


def test_up_detach_with_logs_writes_the_node_output_under_logs_dir(tmp_path, projects):
    project = projects(tmp_path, '''logs: {dir: out}
instances:
  hello:
    command: sh -c "echo hello from the block; sleep 1000"
''')
    pid, log, _ = project.up()
    assert log == tmp_path / 'out' / '_node.log'
    wait_until(lambda: 'hello from the block' in log.read_text(), timeout=30, message='the line in _node.log')
    block_log = tmp_path / 'out' / 'hello.log'  # the block's own file, as without -D (flushed within 0.5s)
    wait_until(lambda: block_log.exists() and 'hello from the block' in block_log.read_text(), timeout=30,
               message='the line in hello.log')
    assert project.cli('down').returncode == 0


def test_a_detached_node_killed_with_sigkill_takes_its_processes_along(tmp_path, projects):
    project = projects(tmp_path)
    pid, _, _ = project.up()
    wait_until(lambda: len(project.remember(pid)) >= 8, timeout=60, message='every process of the node')
    procs = project.remember(pid)
    os.kill(pid, signal.SIGKILL)  # no graceful stop: PDEATHSIG and the watchdog, as in the foreground
    wait_until(lambda: alive(procs) == [], timeout=30, message='every process of the killed node to go')

    assert one_line_error(project.cli('down'), 3) == \
        'error: no node is running for node.yml (start one with `fannode up`)'  # its stale pidfile is no node
    again, _, _ = project.up()  # nor does it stop a new one
    assert json.loads(project.cli('ps', '--json').stdout)['pid'] == again
    assert project.cli('down').returncode == 0
