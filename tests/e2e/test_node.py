"""`fannode up` end to end: the workshop topology, restarts, live edits of node.yml,
crash loops, orphans, and the control commands. Real processes throughout."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from conftest import FANNODE, ROOT, free_port, wait_until

from fannode.hub.client import hub_endpoint
from fannode.node.block import BACKOFF_CAP, BACKOFF_FIRST
from fannode.node.client import request
from fannode.node.stopnode import alive

pytestmark = pytest.mark.e2e


def workshop(hub: str, web_port: int, greeting: int = 3, listen: int = 4, web: int = 2, extra: str = '') -> str:
    return f'''registry: {hub}
env:
  PYTHONPATH: {ROOT / 'services'}
sockets:
  web: {{host: 127.0.0.1, port: {web_port}}}
instances:
  greeting:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
    numprocesses: {greeting}
  listen:
    command: fannode instance --config {ROOT / 'conf' / 'listen.yml'}
    numprocesses: {listen}
  web:
    command: fannode instance --config {ROOT / 'conf' / 'web.yml'}
    numprocesses: {web}
    sockets: [web]
    depends_on: [greeting]
{extra}'''


class Node:
    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.file = tmp_path / 'node.yml'
        self.hub = 'hub://127.0.0.1:%d' % free_port()
        self.web_port = free_port()
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(tmp_path),
                        XDG_STATE_HOME=str(tmp_path / 'state'))
        for key in ('FANNODE_REGISTRY', 'FANNODE_EVENTS'):
            self.env.pop(key, None)
        self.proc: subprocess.Popen | None = None
        self.children: dict[int, psutil.Process] = {}

    def write(self, text: str) -> None:
        # a new inode, as editors save, and never a half-written file for the watcher
        tmp = self.file.with_suffix('.tmp')
        tmp.write_text(text)
        os.replace(tmp, self.file)

    def up(self, *args: str) -> subprocess.Popen:
        if self.proc is not None:
            self.log.close()
        self.log = open(self.dir / 'up.log', 'w+')
        self.proc = subprocess.Popen([*FANNODE, 'up', *args], cwd=self.dir, env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self.proc

    def output(self) -> str:
        return (self.dir / 'up.log').read_text()

    def wait_for(self, text: str, timeout: float = 30.0, after: int = 0) -> None:
        def seen() -> bool:
            assert self.proc.poll() is None, 'fannode up exited %s:\n%s' % (self.proc.returncode, self.output())
            return text in self.output()[after:]
        wait_until(seen, timeout, message='%r in the output of fannode up' % text)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([*FANNODE, *args], cwd=self.dir, env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def services(self) -> dict[str, list[dict]]:
        reply = request(hub_endpoint(self.hub), 'hub.services', {}, 2.0)
        return reply.body if reply is not None else {}

    def pids(self, service: str) -> set[int]:
        return {i['pid'] for i in self.services().get(service, [])}

    def counts(self) -> dict[str, int]:
        return {name: len(instances) for name, instances in self.services().items()}

    def ps(self) -> dict[str, dict]:
        result = self.cli('ps', '--json')
        assert result.returncode == 0, result.stderr
        return {b['name']: b for b in json.loads(result.stdout)['blocks']}

    def remember_children(self) -> None:
        # psutil.Process, not the bare pid: it knows its start time, so a pid the kernel has
        # given to someone else since (another test's process) is never taken for ours
        if self.proc is not None and self.proc.poll() is None:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                known = self.children.get(child.pid)
                if known is None or not known.is_running():
                    self.children[child.pid] = child

    def alive_children(self) -> list[int]:
        return [proc.pid for proc in alive(list(self.children.values()))]

    def stop(self) -> None:
        self.remember_children()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for proc in alive(list(self.children.values())):
            try:
                proc.kill()  # psutil checks it is still the process we saw
            except psutil.NoSuchProcess:
                pass
        if self.proc is not None:
            self.log.close()


@pytest.fixture
def workshop_node(node):
    node.write(workshop(node.hub, node.web_port))
    node.up()
    node.wait_for('cluster ready', 60)
    node.remember_children()
    return node


def test_the_workshop_topology_comes_up_and_answers(workshop_node):
    node = workshop_node
    assert node.counts() == {'Greeting': 3, 'Listen': 4, 'Web': 2}
    result = node.cli('discover')
    assert result.returncode == 0 and result.stdout.split('\n')[:3] == ['Greeting [3]', 'Listen [4]', 'Web [2]']
    with urllib.request.urlopen('http://127.0.0.1:%d/greet?name=joe' % node.web_port, timeout=10) as response:
        assert response.read() == b'Hi, joe!'
    # Greeting prints, Listen prints: their output comes through the node, prefixed
    node.wait_for('Somebody greeted joe')
    out = node.output()
    assert any(line.startswith('greeting.') and 'Saying hi to joe' in line for line in out.splitlines())
    # the hub came first, web only after greeting was ready
    assert out.index('hub.1 started') < out.index('greeting.1 started')
    assert out.index('greeting ready') < out.index('web.1 started')


def test_both_web_processes_serve_the_shared_socket(workshop_node):
    node = workshop_node
    for i in range(40):  # a new connection each: the kernel spreads them over both
        with urllib.request.urlopen('http://127.0.0.1:%d/greet?name=n%d' % (node.web_port, i), timeout=10) as r:
            assert r.status == 200
    node.wait_for('GET /greet?name=n39')
    access = [line.split(' ')[0] for line in node.output().splitlines() if 'GET /greet?name=n' in line]
    assert {'web.1', 'web.2'} <= set(access), access


def test_a_killed_instance_is_replaced_and_discoverable_again(workshop_node):
    node = workshop_node
    before = node.pids('Greeting')
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(node.pids('Greeting') - {victim}) == 3 and victim not in node.pids('Greeting'),
               timeout=3, interval=0.02, message='a new Greeting instance')
    assert 'killed by SIGKILL' in node.output()
    ps = node.ps()['greeting']
    assert ps['restarts'] == 1 and ps['state'] == 'ready' and len(ps['processes']) == 3
    assert sorted(p['index'] for p in ps['processes']) == [1, 2, 3]


def test_editing_numprocesses_scales_live_without_touching_the_rest(workshop_node):
    node = workshop_node
    listen = node.pids('Listen')
    for count in (5, 2):
        mark = len(node.output())
        node.write(workshop(node.hub, node.web_port, greeting=count))
        wait_until(lambda: node.counts().get('Greeting') == count, timeout=3, interval=0.02,
                   message='Greeting [%d]' % count)
        node.wait_for('greeting: ', after=mark)
    wait_until(lambda: len(node.ps()['greeting']['processes']) == 2, timeout=5, message='2 greeting processes')
    assert node.pids('Listen') == listen  # nothing else restarted
    assert 'greeting: 3 → 5 processes' in node.output() and 'greeting: 5 → 2 processes' in node.output()


def test_adding_and_removing_a_block_live(workshop_node):
    node = workshop_node
    extra = f'''  greeting2:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
    numprocesses: 2
'''
    greeting = node.pids('Greeting')
    node.write(workshop(node.hub, node.web_port, extra=extra))
    wait_until(lambda: node.counts().get('Greeting') == 5, timeout=5, message='Greeting [5]')
    assert greeting <= node.pids('Greeting')
    node.write(workshop(node.hub, node.web_port))
    wait_until(lambda: node.pids('Greeting') == greeting, timeout=15, message='the added block to go')
    assert 'greeting2: added' in node.output() and 'greeting2: removed' in node.output()


def test_a_broken_edit_changes_nothing_and_says_why(workshop_node):
    node = workshop_node
    pids = node.pids('Greeting')
    node.write(workshop(node.hub, node.web_port).replace('numprocesses: 3', 'numprocess: 5'))
    node.wait_for("instances.greeting: unknown key 'numprocess'")
    assert 'still running the previous topology' in node.output()
    result = node.cli('reload')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip().startswith('error: %s:9: instances.greeting: unknown key' % node.file)
    check = node.cli('up', '--check')
    assert check.returncode == 2 and check.stderr.count('\n') == 1 and "did you mean 'numprocesses'" in check.stderr
    assert node.pids('Greeting') == pids and node.proc.poll() is None
    node.write('instances: [oops')  # not even YAML
    node.wait_for('still running the previous topology', after=node.output().index('numprocess') + 200)
    assert node.pids('Greeting') == pids


def test_ctrl_c_stops_everything_cleanly(workshop_node):
    node = workshop_node
    node.proc.send_signal(signal.SIGINT)
    assert node.proc.wait(20) == 0
    assert node.alive_children() == []
    assert node.output().rstrip().endswith('node stopped')
    assert node.services() == {}  # the hub went last, after everyone had unregistered... and is gone


def test_a_killed_node_leaves_no_child_behind(workshop_node):
    node = workshop_node
    assert len(node.children) >= 10
    node.proc.kill()
    node.proc.wait(5)
    wait_until(lambda: node.alive_children() == [], timeout=3, message='every child to die with the node')


def test_control_commands_ps_scale_restart(workshop_node):
    node = workshop_node
    result = node.cli('ps')
    assert result.returncode == 0
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.strip()}
    assert lines['greeting'][1:3] == ['ready', '3/3'] and lines['hub'][1] == 'ready'
    result = node.cli('scale', 'greeting', '4')
    assert result.returncode == 0 and result.stdout.strip() == 'greeting: 3 → 4 processes'
    wait_until(lambda: node.counts().get('Greeting') == 4, timeout=5, message='Greeting [4]')
    listen = node.pids('Listen')
    result = node.cli('restart', 'listen')
    assert result.returncode == 0, result.stderr
    wait_until(lambda: len(node.pids('Listen')) == 4 and not (node.pids('Listen') & listen), timeout=15,
               message='4 new Listen instances')
    bad = node.cli('scale', 'nosuch', '2')
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "error: no instance block 'nosuch' (have: hub, greeting, listen, web)"


def test_a_crash_looping_command_backs_off_and_is_marked_failed(node):
    node.write('''registry: %s
instances:
  crasher:
    command: sh -c "echo boom; exit 3"
    max_restarts: 3
''' % node.hub)
    node.up()
    node.wait_for('crasher failed', 30)
    out = node.output()
    assert 'restarting in' in out  # backed off between tries
    assert out.count('crasher.1 started') == 4  # the first start and 3 restarts, then no more
    assert 'crasher.1 │ boom' in out and 'exited with status 3' in out
    # Nothing more is spawned after it failed: watched for longer than the backoff a 4th
    # restart would have waited (failure 4: 0.5 s × 2², up to +20%) plus a spawn, and
    # failing on the first pid that was not there when it failed.
    wait_until(lambda: node.ps()['crasher']['state'] == 'failed', timeout=5, message='crasher failed in ps')

    def pids() -> set[int]:
        started = re.findall(r'crasher\.1 started \(pid (\d+)\)', node.output())
        return {int(pid) for pid in started} | {p['pid'] for p in node.ps()['crasher']['processes']}

    spawned = pids()
    deadline = time.monotonic() + min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** 2) * 1.2 + 1.0
    while time.monotonic() < deadline:  # each look runs `fannode ps`: no sleep needed between
        new = pids() - spawned
        assert not new, 'spawned after crasher failed: pid %s' % ', '.join(map(str, sorted(new)))
    assert node.output().count('crasher.1 started') == 4
    ps = node.ps()['crasher']
    assert ps['state'] == 'failed' and 'exited with status 3 4 times in a row' in ps['failed']
    assert psutil.Process(node.proc.pid).cpu_percent(interval=1.0) < 20


def test_other_commands_with_a_ready_check(node):
    port = free_port()
    node.write('''registry: %s
instances:
  files:
    command: python3 -m http.server %d --bind 127.0.0.1
    ready: {tcp: %d}
  once:
    command: sh -c "echo done"
    restart: on-failure
''' % (node.hub, port, port))
    node.up()
    node.wait_for('cluster ready', 30)
    assert 'files ready: 1/1' in node.output()
    assert 'once.1 exited with status 0; not restarted (restart: on-failure)' in node.output()
    with urllib.request.urlopen('http://127.0.0.1:%d/' % port, timeout=5) as response:
        assert response.status == 200


def test_a_second_node_for_the_same_file_is_refused(workshop_node):
    node = workshop_node
    result = node.cli('up')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.strip() == 'error: a node is already running for %s (pid %d)' % (node.file, node.proc.pid)


def test_a_missing_command_and_a_taken_port_are_one_line_errors(node):
    with __import__('socket').socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        node.write(workshop(node.hub, port))
        result = node.cli('up')
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.strip() == \
            "error: cannot listen on socket 'web' (127.0.0.1:%d): Address already in use" % port
    node.write('''registry: %s
instances:
  redis:
    command: no-such-redis-server --port 1
''' % node.hub)
    node.up()
    node.wait_for('cluster up with failures', 30)
    assert 'redis: command not found: no-such-redis-server' in node.output()


def test_the_repository_node_yml_runs_as_the_readme_says(node):
    """`make up` runs the repository's node.yml; here with free ports in place of 4010/4080."""
    text = (ROOT / 'node.yml').read_text()
    assert 'registry: ${FANNODE_REGISTRY:-hub}' in text and 'port: ${WEB_PORT:-4080}' in text
    node.write(text)  # as it is; the environment moves it off the default ports
    node.env.update(FANNODE_REGISTRY=node.hub, WEB_PORT=str(node.web_port))
    for name in ('services', 'conf'):
        (node.dir / name).symlink_to(ROOT / name)
    node.up()
    node.wait_for('cluster ready', 60)
    node.remember_children()
    result = node.cli('discover')
    assert result.stdout == 'Greeting [3]\nListen [4]\nWeb [2]\n'
    result = node.cli('request', 'Greeting.greet', '{"name": "Joe"}')
    assert (result.returncode, result.stdout) == (0, 'Hi, Joe!\n')
    node.wait_for('Somebody greeted Joe')
    with urllib.request.urlopen('http://127.0.0.1:%d/greet?name=joe' % node.web_port, timeout=10) as r:
        assert r.read() == b'Hi, joe!'
    node.wait_for('Somebody greeted joe')


def test_a_slow_scale_down_does_not_hold_up_the_other_blocks(node):
    """A process that ignores SIGTERM takes its whole stop_timeout to go; meanwhile a
    killed instance of another block is still replaced, and indexes stay 1..N."""
    def topology(slow: int) -> str:
        return f'''registry: {node.hub}
env:
  PYTHONPATH: {ROOT / 'services'}
instances:
  greeting:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
    numprocesses: 2
  slow:
    command: python3 -c "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    numprocesses: {slow}
    stop_timeout: 4
'''
    node.write(topology(3))
    node.up()
    node.wait_for('cluster ready', 60)
    node.remember_children()
    node.write(topology(1))
    wait_until(lambda: sum(not p['stopping'] for p in node.ps()['slow']['processes']) == 1, timeout=5,
               message='slow scaled to 1')
    victim = min(node.pids('Greeting'))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(node.pids('Greeting')) == 2 and victim not in node.pids('Greeting'), timeout=3,
               interval=0.02, message='greeting replaced while slow is still stopping')
    assert any(p['stopping'] for p in node.ps()['slow']['processes'])  # still in its grace period
    wait_until(lambda: [p['index'] for p in node.ps()['slow']['processes']] == [1], timeout=15,
               message='slow down to index 1 only')
