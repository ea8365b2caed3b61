"""Rolling replace and rollback under `fannode up`, with real processes and a client
calling nonstop: the walkthrough of docs/versions.md (Greeting 1.0.0 → 2.0.0 → back,
0 failed calls), a broken version rolled back by itself, `fannode rollout`, Ctrl-C in
the middle of a rollout."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, wait_until
from test_node import Node

pytestmark = pytest.mark.e2e

LOAD = ROOT / 'bench' / 'rollout_load.py'  # the bench's rollout case runs the same load


def topology(node: Node, greeting: str = '1.0.0', web: str = '1.0.0',
             greeting_command: str = 'fannode instance --config %s' % (ROOT / 'conf' / 'greeting.yml')) -> str:
    return f'''registry: {node.hub}
env:
  PYTHONPATH: {ROOT / 'services'}
sockets:
  web: {{host: 127.0.0.1, port: {node.web_port}}}
instances:
  greeting:
    command: {greeting_command}
    numprocesses: 3
    version: {greeting}
    preload: false  # started with exec, a rollout lasts long enough to send it a change meanwhile
  web:
    command: fannode instance --config {ROOT / 'conf' / 'web.yml'}
    numprocesses: 2
    sockets: [web]
    depends_on: [greeting]
    version: {web}
'''


class Load:
    """rollout_load.py in a process of its own: RPC calls and HTTP requests nonstop."""

    def __init__(self, node: Node):
        self.file = node.dir / 'load.json'
        self.log = open(node.dir / 'load.log', 'w+')
        self.proc = subprocess.Popen([sys.executable, str(LOAD), node.hub, str(node.web_port), str(self.file), '2', '3'],
                                     env=node.env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.counts()['rpc_ok'] > 50 and self.counts()['http_ok'] > 20, 30,
                   message='calls answered (%s)' % self.file)

    def counts(self) -> dict:
        assert self.proc.poll() is None, 'the load exited: %s' % self.file.with_name('load.log').read_text()[-2000:]
        try:
            return json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {'rpc_ok': 0, 'rpc_failed': 0, 'http_ok': 0, 'http_failed': 0, 'errors': []}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def during(load: Load, action) -> dict:
    """What the load counted while `action` ran."""
    before = load.counts()
    action()
    after = load.counts()
    counted = {k: after[k] - before[k] for k in ('rpc_ok', 'rpc_failed', 'http_ok', 'http_failed')}
    counted['errors'] = after['errors']
    return counted


def versions(node: Node, service: str) -> list[str]:
    result = node.cli('discover', '--json')
    assert result.returncode == 0, result.stderr
    return sorted(i['version'] for i in json.loads(result.stdout).get(service, []))


@pytest.fixture
def cluster(tmp_path):
    node = Node(tmp_path)
    node.write(topology(node))
    node.up()
    node.wait_for('cluster ready', 60)
    load = Load(node)
    yield node, load
    load.stop()
    node.stop()
    assert not node.alive_children()


@pytest.mark.timeout(300)
def test_version_edit_rolls_out_and_back_without_a_failed_call(cluster):
    node, load = cluster
    assert versions(node, 'Greeting') == ['1.0.0'] * 3
    old = node.pids('Greeting')
    mark = len(node.output())

    def roll_out() -> None:
        node.write(topology(node, greeting='2.0.0', web='2.0.0'))
        node.wait_for('greeting: rolled out 2.0.0, 3/3 replaced', 120, after=mark)
        node.wait_for('web: rolled out 2.0.0, 2/2 replaced', 120, after=mark)
        node.remember_children()

    counted = during(load, roll_out)
    assert counted['rpc_failed'] == 0 and counted['http_failed'] == 0, counted
    assert counted['rpc_ok'] + counted['http_ok'] >= 2000 and counted['http_ok'] > 0, counted
    out = node.output()[mark:]
    assert 'node.yml changed: greeting: rolling replace (version changed)' in out
    assert 'greeting: rolling out 1.0.0 → 2.0.0 (3 processes, 1 at a time)' in out
    for i in (1, 2, 3):
        assert 'greeting: %d/3 replaced' % i in out
    # one at a time: each old process stops only after a new one was ready
    assert out.index('greeting: 1/3 replaced') < out.index('greeting.1 stopped')
    assert versions(node, 'Greeting') == ['2.0.0'] * 3 and versions(node, 'Web') == ['2.0.0'] * 2
    assert not node.pids('Greeting') & old
    ps = node.ps()['greeting']
    assert ps['state'] == 'ready' and ps['version'] == '2.0.0'
    assert sorted(p['index'] for p in ps['processes']) == [1, 2, 3]
    assert ps['rollout']['state'] == 'done' and ps['rollout']['from'] == '1.0.0' and ps['rollout']['to'] == '2.0.0'

    result = {}

    def roll_back() -> None:
        result['cli'] = node.cli('rollback', 'greeting', timeout=120)

    counted = during(load, roll_back)
    cli = result['cli']
    assert cli.returncode == 0, cli.stderr
    lines = cli.stdout.splitlines()
    assert lines[0] == 'greeting: rolling back 2.0.0 → 1.0.0 (3 processes)'
    assert re.fullmatch(r'greeting: rolled back to 1\.0\.0, 3/3 replaced in [0-9.]+s', lines[-1]), lines
    assert counted['rpc_failed'] == 0 and counted['http_failed'] == 0, counted
    assert versions(node, 'Greeting') == ['1.0.0'] * 3


@pytest.mark.timeout(300)
def test_a_broken_version_is_rolled_back_and_the_old_processes_keep_serving(cluster):
    node, load = cluster
    old = node.pids('Greeting')
    mark = len(node.output())
    broken = 'fannode instance --config %s' % (node.dir / 'missing.yml')

    def roll_out() -> None:
        node.write(topology(node, greeting='2.0.0', greeting_command=broken))
        node.wait_for('greeting: rollout to 2.0.0 failed', 120, after=mark)
        node.wait_for('of the previous spec serving', 60, after=mark)

    counted = during(load, roll_out)
    assert counted['rpc_failed'] == 0 and counted['http_failed'] == 0, counted
    said = [line for line in node.output()[mark:].splitlines() if 'of the previous spec serving' in line]
    assert len(said) == 1 and re.search(
        r'greeting: rollout to 2\.0\.0 failed: greeting\.1 exited with status \d+; '
        r'rolled back, 3 processes of the previous spec serving$', said[0]), said
    assert node.pids('Greeting') == old and versions(node, 'Greeting') == ['1.0.0'] * 3
    ps = node.ps()['greeting']
    assert ps['state'] == 'ready' and ps['rollout']['state'] == 'rolled back' and len(ps['processes']) == 3

    # a rolling restart of what runs, refusing other changes meanwhile. `fannode scale` is
    # started first and sends when told: a forked restart of 3 can end before a CLI starts
    scale = subprocess.Popen([sys.executable, '-c', 'import sys; from fannode.cli.main import run; '
                              'from fannode.cli import scale; print("primed", flush=True); '
                              'sys.stdin.readline(); sys.exit(run(["scale", "greeting", "5"]))'],
                             cwd=node.dir, env=node.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert scale.stdout.readline() == 'primed\n'
    mark = len(node.output())
    rollout = subprocess.Popen([sys.executable, '-m', 'fannode.cli', 'rollout', 'greeting', '--json'], cwd=node.dir,
                               env=node.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        node.wait_for('greeting: rolling out', 30, after=mark)
        _, scale_err = scale.communicate('go\n', timeout=60)
        assert scale.returncode == 3 and scale_err.startswith('error: greeting is rolling out ('), scale_err
        out, err = rollout.communicate(timeout=120)
    finally:
        for proc in (scale, rollout):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rollout.returncode == 0, err
    done = json.loads(out)
    assert done['state'] == 'done' and done['done'] == done['total'] == 3 and done['kind'] == 'rollout'
    assert not node.pids('Greeting') & old and len(node.pids('Greeting')) == 3
    assert load.counts()['rpc_failed'] == 0 and load.counts()['http_failed'] == 0


def test_rollback_without_a_previous_spec_is_a_one_line_error(cluster):
    node, _ = cluster
    result = node.cli('rollback', 'web')
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr == 'error: web: no previous spec to roll back to (it has not been replaced since the node started)\n'
    result = node.cli('rollout', 'nope', '--json')
    assert result.returncode == 2 and json.loads(result.stdout)['error']['message'].startswith("no instance block 'nope'")


@pytest.mark.timeout(300)
def test_ctrl_c_in_the_middle_of_a_rollout_stops_everything(cluster):
    node, load = cluster
    mark = len(node.output())
    node.write(topology(node, greeting='2.0.0'))
    node.wait_for('greeting: rolling out 1.0.0 → 2.0.0', 60, after=mark)
    # the new spec's first process, read from the node's output as soon as it says so;
    # asking `ps` took a CLI start each time and could miss the whole rollout
    node.wait_for('greeting.1 started (pid', 90, after=mark)
    node.remember_children()
    load.stop()
    node.proc.send_signal(signal.SIGINT)
    assert node.proc.wait(60) == 0, node.output()[-3000:]
    assert node.output().rstrip().endswith('stopped')
    wait_until(lambda: not node.alive_children(), 15, message='every child gone')


WORKER = '''registry: {hub}
instances:
  worker:
    command: [python3, -u, -c, "import os, time; print({says}); time.sleep(1000)"]
    numprocesses: 2
    version: {version}
    ready: {{log: up}}
    rollout: {{timeout: 3}}
    stop_timeout: 2
'''


@pytest.mark.timeout(180)
def test_a_rollout_failing_half_way_brings_the_old_processes_back_before_stopping_the_new(node):
    node.write(WORKER.format(hub=node.hub, says="'up'", version='1.0.0'))
    node.up()
    node.wait_for('cluster ready', 60)
    mark = len(node.output())
    # the new spec's process 1 is ready, its process 2 never is
    node.write(WORKER.format(hub=node.hub, version='2.0.0',
                             says="'up' if os.environ['FANNODE_WORKER_INDEX'] == '1' else 'no'"))
    node.wait_for('of the previous spec serving', 60, after=mark)
    out = node.output()[mark:]
    assert 'worker: 1/2 replaced' in out
    assert re.search(r'worker: rollout to 2\.0\.0 failed: 1 new process not ready within 3s; rolled back, '
                     r'2 processes of the previous spec serving', out), out
    new_ready = int(re.search(r'worker\.1 started \(pid (\d+)\)', out).group(1))
    back = out[out.index('rolling back'):]
    # never fewer than before: the old spec's replacement starts before the ready new process stops
    assert back.index('worker.1 started') < back.index('worker.1 stopped (pid %d)' % new_ready), back
    ps = node.ps()['worker']
    assert ps['state'] == 'ready' and ps['version'] == '1.0.0' and ps['ready'] == 2
    assert sorted(p['index'] for p in ps['processes']) == [1, 2] and not any(p.get('next') for p in ps['processes'])
