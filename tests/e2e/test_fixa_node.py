"""How the node's changes meet, end to end with real `fannode up`: an edit of a block still
waiting on its depends_on starts it once; a node.yml rollout racing an autoreload ends on
the newest spec and code; changes asked for during a rollout are refused at once (exit 3);
Ctrl-C in the middle of a rollout stops everything and exits 0."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from conftest import wait_until
from test_node import Node

pytestmark = pytest.mark.e2e


WAITING = '''registry: {hub}
instances:
  migrate:
    command: sh -c "sleep 8; touch migrated; echo migration done"
    restart: never
  web:
    command: python3 -c "import os, time; print('web', os.environ['FLAVOUR'], 'sees migrated:', os.path.exists('migrated'), flush=True); time.sleep(600)"
    env: {{FLAVOUR: {flavour}}}
    ready: {{log: sees migrated}}
    depends_on:
      migrate: {{condition: completed_successfully}}
'''


def web_processes(node: Node) -> list[int]:
    node.remember_children()
    return [pid for pid in node.alive_children()
            if 'sees migrated' in ' '.join(_cmdline(pid))]


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


@pytest.mark.timeout(180)
def test_an_edit_of_a_block_waiting_on_its_condition_starts_it_once_after_the_condition(node):
    node.write(WAITING.format(hub=node.hub, flavour='first'))
    node.up()
    node.wait_for('migrate.1 started', 60)
    assert node.ps()['web']['state'] == 'waiting'  # migrate runs for 8s
    node.write(WAITING.format(hub=node.hub, flavour='second'))  # env: a change that rolls a running block
    node.wait_for('web: rolling replace (env changed)', 30)
    node.wait_for('cluster ready', 60)
    node.wait_for('web second sees migrated: True', 30)
    out = node.output()
    assert out.count('web.1 started') == 1, out
    assert 'web first' not in out, out
    assert out.index('migrate.1 exited with status 0') < out.index('web.1 started'), out
    ps = node.ps()['web']
    assert (ps['state'], ps['running']) == ('ready', 1)
    assert len(web_processes(node)) == 1


WORKER = '''import os, time
print('up', os.environ['SAYS'], {code!r}, flush=True)
time.sleep(600)
'''

RELOADING = '''registry: {hub}
instances:
  worker:
    command: python3 -u worker.py
    numprocesses: 2
    version: {version}
    env: {{SAYS: {says}}}
    reload: true
    ready: {{log: up}}
    stop_timeout: 2
'''


def save(path, text: str) -> None:
    """As editors save: a new file put in place."""
    tmp = path.with_name('.' + path.name + '.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)


def settled(node: Node, version: str) -> bool:
    ps = node.ps()['worker']
    rollouts = [ps.get('rollout') or {}] + ps.get('rollouts', [])
    return (ps['state'] == 'ready' and ps['version'] == version and ps['ready'] == 2
            and not any(r.get('state') in ('waiting', 'running') for r in rollouts))


@pytest.mark.timeout(240)
def test_a_node_yml_rollout_racing_an_autoreload_ends_on_the_newest_spec_and_code(node):
    save(node.dir / 'worker.py', WORKER.format(code='code1'))
    node.write(RELOADING.format(hub=node.hub, version='1.0.0', says='one'))
    node.up()
    node.wait_for('cluster ready', 60)
    mark = len(node.output())
    # a branch switch: node.yml and the code change together
    save(node.dir / 'worker.py', WORKER.format(code='code2'))
    node.write(RELOADING.format(hub=node.hub, version='2.0.0', says='two'))
    node.wait_for('worker: rolled out 2.0.0', 90, after=mark)
    node.wait_for('worker: reloaded', 90, after=mark)
    wait_until(lambda: settled(node, '2.0.0'), 90, message='worker on 2.0.0, no rollout left')
    wait_until(lambda: node.output()[mark:].count("up two code2") >= 2, 30, message='two processes on both changes')
    out = node.output()[mark:]
    assert '→ 1.0.0' not in out, out  # nothing went back to the spec node.yml no longer has
    pids = [p['pid'] for p in node.ps()['worker']['processes']]
    assert len(pids) == 2 and all(psutil.Process(pid).environ()['SAYS'] == 'two' for pid in pids)
    # what runs is what node.yml says: saving it again changes nothing
    after = len(node.output())
    node.write(RELOADING.format(hub=node.hub, version='2.0.0', says='two') + '\n')
    result = node.cli('reload')
    assert result.returncode == 0, result.stderr
    assert 'changed:' not in node.output()[after:]
    assert [p['pid'] for p in node.ps()['worker']['processes']] == pids


SLOW = '''registry: {hub}
instances:
  worker:
    command: [python3, -u, -c, "import time; time.sleep({delay}); print('up', flush=True); time.sleep(600)"]
    numprocesses: 2
    version: {version}
    ready: {{log: up, timeout: 60}}
    stop_timeout: 2
'''

RESTART_PROCESS = '''import sys
from fannode.cli import exitcodes
from fannode.node.client import NodeClient
try:
    NodeClient('node.yml', timeout=10).restart_process(int(sys.argv[1]))
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(exitcodes.for_error(e))
'''


def restart_process(node: Node, pid: int) -> subprocess.CompletedProcess:
    """What `fannode top`'s `r` asks the node."""
    return subprocess.run([sys.executable, '-c', RESTART_PROCESS, str(pid)], cwd=node.dir, env=node.env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.timeout(180)
def test_changes_asked_for_during_a_rollout_are_refused_at_once_with_exit_3(node):
    node.write(SLOW.format(hub=node.hub, version='1.0.0', delay=0))
    node.up()
    node.wait_for('cluster ready', 60)
    mark = len(node.output())
    node.write(SLOW.format(hub=node.hub, version='2.0.0', delay=4))  # each new process ready after 4s
    node.wait_for('worker: rolling out 1.0.0 → 2.0.0', 30, after=mark)
    pid = node.ps()['worker']['processes'][0]['pid']
    refused = restart_process(node, pid)
    assert refused.returncode == 3, refused
    assert refused.stdout.startswith('Busy worker is rolling out ('), refused.stdout
    for args in (('scale', 'worker', '3'), ('rollout', 'worker')):
        result = node.cli(*args)
        assert result.returncode == 3, result
        assert result.stderr.startswith('error: worker is rolling out ('), result.stderr
        assert result.stderr.endswith('; try again when it is done\n'), result.stderr
    node.wait_for('worker: rolled out 2.0.0', 60, after=mark)
    assert "restarting pid" not in node.output()[mark:]  # the refused request never ran later
    pid = node.ps()['worker']['processes'][0]['pid']
    done = restart_process(node, pid)
    assert done.returncode == 0, done
    node.wait_for('restarting pid %d (fannode top)' % pid, 30, after=mark)


@pytest.mark.timeout(180)
def test_ctrl_c_while_new_processes_start_stops_both_sets_and_exits_0(node):
    node.write(SLOW.format(hub=node.hub, version='1.0.0', delay=0))
    node.up()
    node.wait_for('cluster ready', 60)
    mark = len(node.output())
    node.write(SLOW.format(hub=node.hub, version='2.0.0', delay=30))  # never ready before the Ctrl-C
    node.wait_for('worker: rolling out 1.0.0 → 2.0.0', 30, after=mark)
    wait_until(lambda: any(p.get('next') for p in node.ps()['worker']['processes']), 30, message='a new process')
    node.remember_children()
    node.proc.send_signal(signal.SIGINT)
    assert node.proc.wait(60) == 0, node.output()[-3000:]
    out = node.output()
    assert out.rstrip().endswith('stopped'), out[-3000:]
    assert 'Traceback' not in out and 'failed' not in out[mark:], out[mark:]
    wait_until(lambda: not node.alive_children(), 15, message='every child gone')


@pytest.mark.timeout(180)
def test_a_procfile_block_rolls_out_in_turn_each_new_process_on_the_port_the_old_one_left(tmp_path):
    from test_procfile_node import free_base, ps, serves
    node = Node(tmp_path)
    node.file = tmp_path / 'Procfile'
    try:
        base = free_base(1)
        node.env['PORT'] = str(base)
        node.write('web: python3 -m http.server $PORT --bind 127.0.0.1\n')
        node.up()
        node.wait_for('cluster ready', 60)
        assert node.cli('scale', 'web', '2', '-f', 'Procfile').returncode == 0
        wait_until(lambda: serves(base) and serves(base + 1), 30, message='web.1 and web.2 serving')
        old = {p['pid'] for p in ps(node)['web']['processes']}
        mark = len(node.output())
        result = node.cli('rollout', 'web', '-f', 'Procfile', timeout=120)
        assert result.returncode == 0, (result.stdout, result.stderr, node.output()[mark:])
        assert result.stdout.splitlines()[-1].startswith('web: rolled out the same spec, 2/2 replaced in ')
        out = node.output()[mark:]
        assert 'Address already in use' not in out, out
        # web.1's replacement starts once web.1 has exited: it takes over its PORT
        assert out.index('web.1 stopped') < out.index('web.1 started'), out
        block = ps(node)['web']
        assert (block['state'], block['running']) == ('ready', 2) and not old & {p['pid'] for p in block['processes']}
        wait_until(lambda: serves(base) and serves(base + 1), 30, message='both new processes serving')
    finally:
        node.stop()
