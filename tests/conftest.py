"""Real processes for tests: a hub on a free port, instances, the CLI. Every process
started here is killed by PID when its test ends."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fannode import testing

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / 'tests'
FANNODE = [sys.executable, '-m', 'fannode.cli']
sys.path.insert(0, str(TESTS / 'services'))  # the services the in-process tests install


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=10.0, interval=0.05, message='condition'):
    """Poll `predicate` until it returns a truthy value or `timeout` passes: fannode.testing's
    wait_until, with the defaults these tests of real processes want."""
    return testing.wait_until(predicate, timeout, message, interval)


def in_thread(function, *args, **kwargs):
    """function(*args, **kwargs) in gevent's thread pool, the in-process services running
    meanwhile. Not gevent.subprocess: it installs libev's SIGCHLD handler, which then reaps
    every child of this process, so a later test's Popen reads its child's status as 0."""
    import gevent
    return gevent.get_hub().threadpool.apply(function, args, kwargs)


class Cluster:
    """A hub and instances as subprocesses, driven through the CLI."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.url = 'hub://127.0.0.1:%d' % free_port()
        self.env = dict(os.environ, FANNODE_REGISTRY=self.url, PYTHONUNBUFFERED='1',
                        PYTHONPATH=os.pathsep.join([str(TESTS / 'services'), str(ROOT)]))
        self.env.pop('FANNODE_EVENTS', None)
        self.procs: list[subprocess.Popen] = []
        self.hub: subprocess.Popen | None = None

    def spawn(self, *args: str, env: dict | None = None, name: str = 'proc') -> subprocess.Popen:
        log = open(self.tmp_path / ('%s-%d.log' % (name, len(self.procs))), 'w+')
        proc = subprocess.Popen([*FANNODE, *args], env=dict(self.env, **(env or {})), cwd=self.tmp_path,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        proc.log = log
        self.procs.append(proc)
        return proc

    def start_hub(self) -> subprocess.Popen:
        self.hub = self.spawn('hub', '--journal', str(self.tmp_path / 'hub.sqlite3'), name='hub')
        wait_until(lambda: 'hub listening' in output(self.hub), message='the hub to listen')
        return self.hub

    def start_instance(self, config: str = 'demo.yml', env: dict | None = None,
                       wait: bool = True) -> subprocess.Popen:
        proc = self.spawn('instance', '--config', str(TESTS / 'conf' / config), env=env, name='instance')
        if wait:
            wait_until(lambda: 'serving' in output(proc) or proc.poll() is not None,
                       message='the instance to serve')
            assert proc.poll() is None, output(proc)
        return proc

    def run(self, *args: str, input: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([*FANNODE, *args], env=self.env, cwd=self.tmp_path, input=input,
                              capture_output=True, text=True, timeout=timeout)

    def count(self, service: str) -> int:
        result = self.run('discover', service, '--json')
        assert result.returncode == 0, result.stderr
        import json
        return len(json.loads(result.stdout)[service])

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)
            proc.log.close()


def one_line_error(result: subprocess.CompletedProcess, code: int, stdout: str | None = None) -> str:
    """The one line a failed command printed on stderr, after checking its exit status
    (and what it printed on stdout, when `stdout` is given)."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    if stdout is not None:
        assert result.stdout == stdout, result.stdout
    assert 'Traceback' not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def output(proc: subprocess.Popen) -> str:
    proc.log.flush()
    with open(proc.log.name) as f:
        return f.read()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


# Tests that need a real ZooKeeper or RabbitMQ share one worker under `pytest -n` (--dist
# loadgroup): the servers are session fixtures, started once per worker that asks for them.
_SERVER_FIXTURES = {'provisioned', 'start_server', 'zookeeper', 'rabbitmq'}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _SERVER_FIXTURES & set(getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.xdist_group('servers'))


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist sets COLUMNS=80 LINES=24 in its workers; a TUI started by a test (in tmux)
    # would take that for its terminal's size instead of asking the terminal.
    os.environ.pop('COLUMNS', None)
    os.environ.pop('LINES', None)
    # Under `-n`, a worker's temp dir is BASETEMP/popen-gwN; below pytest's own
    # /tmp/pytest-of-USER/pytest-N, a test's node sockets would pass the 107 bytes a Unix
    # socket path may have. The controller picks a short base; its workers inherit it.
    if (getattr(config.option, 'numprocesses', None) and config.option.basetemp is None
            and not hasattr(config, 'workerinput')):
        config.option.basetemp = tempfile.mkdtemp(prefix='fn-', dir='/tmp')


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """That short base is ours to remove once everything passed (kept after a failure)."""
    base = session.config.option.basetemp
    if (exitstatus == 0 and not hasattr(session.config, 'workerinput') and base
            and os.path.basename(str(base)).startswith('fn-')):
        shutil.rmtree(str(base), ignore_errors=True)


@pytest.fixture
def node(tmp_path):
    """A node.yml in the test's directory for `fannode up` (tests/e2e/test_node.py's Node),
    stopped after the test."""
    from test_node import Node
    n = Node(tmp_path)
    yield n
    n.stop()
