"""Review fixes (FixD), end to end with real processes: a rollback whose previous spec
never gets ready lets go of the node's change lock; a memory limit without cgroups counts
what a block's process left behind (init's child now, still in its group); a second
`fannode down` while the node stops is the same graceful stop, not a kill."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from conftest import FANNODE, wait_until
from test_detach_node import Project

pytestmark = pytest.mark.e2e

HOG = '''import os, sys, time
while not os.path.exists(sys.argv[1]):  # the test has seen the block's process first
    time.sleep(0.05)
chunks = []
for _ in range(40):  # 5 MB every 0.1 s up to 200 MB, every page touched; then it holds
    chunks.append(b'x' * (5 << 20))
    time.sleep(0.1)
time.sleep(600)
'''

WORKER = '''registry: {hub}
instances:
  worker:
    command: [python3, -u, -c, "import os, time; print({says}); time.sleep(1000)"]
    numprocesses: 2
    version: {version}
    ready: {{log: up, timeout: 2}}
    rollout: {{timeout: 3}}
    stop_timeout: 2
  other:
    command: sleep 1000
'''
# the previous spec says `up` only while there is no file `stuck`: brought back, it never gets ready
OLD = "'no' if os.path.exists('stuck') else 'up'"


@pytest.fixture
def slow_project(tmp_path):
    """A node.yml for `up -D` whose process takes 2 s to stop gracefully, and says when it did."""
    project = Project(tmp_path, '''instances:
  slow:
    command: sh -c "trap 'sleep 2; echo graceful > done; exit 0' TERM; sleep 1000 & wait"
    stop_timeout: 60
''')
    yield project
    project.cleanup()


def live(block: dict) -> dict[int, int]:
    return {p['index']: p['pid'] for p in block['processes'] if not p['stopping']}


@pytest.mark.timeout(180)
def test_a_rollback_whose_previous_spec_never_gets_ready_lets_go_of_the_change_lock(node):
    node.write(WORKER.format(hub=node.hub, says=OLD, version='1.0.0'))
    node.up()
    node.wait_for('cluster ready', 60)
    mark = len(node.output())
    (node.dir / 'stuck').write_text('')
    # the new spec's process 1 is ready, its process 2 never is: rolled back, to a spec never ready again
    node.write(WORKER.format(hub=node.hub, version='2.0.0',
                             says="'up' if os.environ['FANNODE_WORKER_INDEX'] == '1' else 'no'"))
    node.wait_for('worker: rollback incomplete: 1 of 2 processes of the previous spec ready after 2s', 60, after=mark)
    node.wait_for('worker: rolled back (incomplete)', 30, after=mark)
    said = [line for line in node.output()[mark:].splitlines() if 'rolled back (incomplete)' in line]
    assert said[0].endswith('worker: rolled back (incomplete): 1 of 2 processes of the previous spec ready after '
                            '4s; changes are taken again, 1 new process serves until they are'), said
    scale = node.cli('scale', 'other', '2')  # the change lock is free: answered, not Busy
    assert scale.returncode == 0, scale.stdout + scale.stderr
    wait_until(lambda: node.ps()['other']['running'] == 2, 30, message='other scaled to 2')
    ps = node.ps()['worker']
    assert ps['rollout']['state'] == 'rolled back (incomplete)' and ps['state'] != 'rolling out'
    assert [p['index'] for p in ps['processes'] if p.get('next')] == [1]  # the ready new one serves on
    again = node.cli('rollout', 'worker')
    assert again.returncode == 2 and 'its last rollback is incomplete' in again.stderr, again.stderr
    # the previous spec ready at last: the new process stops and the rollback ends
    (node.dir / 'stuck').unlink()
    stuck = [p['pid'] for p in ps['processes'] if not p.get('next') and not p['ready']]
    assert len(stuck) == 1, ps['processes']
    os.kill(stuck[0], signal.SIGKILL)  # restarted by the node, it says `up` this time
    node.wait_for('rolled back, 2 processes of the previous spec serving', 60, after=mark)
    wait_until(lambda: not any(p.get('next') for p in node.ps()['worker']['processes']), 30,
               message='the new process gone')


@pytest.mark.timeout(120)
def test_a_memory_limit_without_cgroups_kills_what_the_block_left_behind(node):
    hog = node.dir / 'hog.py'
    hog.write_text(HOG)
    go = node.dir / 'go'
    node.env['FANNODE_CGROUPS'] = '0'
    node.write(f'''registry: {node.hub}
instances:
  daemon:
    command: sh -c "({sys.executable} {hog} {go} &); exec sleep 600"
    restart: never
    limits: {{memory: 64M}}
''')
    node.up()
    node.wait_for('cluster ready', 60)
    leader = live(node.ps()['daemon'])[1]
    go.write_text('')

    def hogs() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                if str(hog) in proc.cmdline():
                    found.append(proc)
            except psutil.Error:
                pass
        return found
    started = wait_until(hogs, 30, message='the hog started')
    try:
        # left behind: out of the leader's tree (the node, a subreaper since preloading, adopted it)
        tree = {leader, *(c.pid for c in psutil.Process(leader).children(recursive=True))}
        assert started[0].ppid() not in tree and started[0].pid not in tree
        wait_until(lambda: node.ps()['daemon']['last_exit'], 60, message='the group killed')
        ps = node.ps()['daemon']
        assert ps['limits']['mechanism'] == 'rlimit+watchdog' and ps['limits']['why'] == '$FANNODE_CGROUPS=0'
        assert ps['last_exit'].startswith('killed: memory limit 64 MiB (rss '), ps['last_exit']
        assert 'daemon.1 killed: memory limit 64 MiB' in node.output()
        wait_until(lambda: not hogs(), 10, message='the hog gone with its group')
    finally:
        for proc in hogs():
            proc.kill()


@pytest.mark.timeout(120)
def test_a_second_down_while_the_node_stops_waits_for_the_same_graceful_stop(slow_project):
    project = slow_project
    pid, log, _ = project.up()
    wait_until(lambda: 'cluster ready' in log.read_text(), 30, message='ready')
    wait_until(lambda: len(project.remember(pid)) >= 4, 30, message='sh and its sleep')
    first = subprocess.Popen([*FANNODE, 'down'], cwd=project.dir, env=project.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: 'stopping: services finish running work' in log.read_text(), 30, message='stopping')
        second = project.cli('down')
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    for result, stdout in ((second, second.stdout), (first, out)):
        assert result.returncode == 0, (stdout, second.stderr, err)
        assert stdout.startswith('stopped node %s (pid %d)' % (project.dir / 'node.yml', pid)), stdout
    assert (project.dir / 'done').read_text() == 'graceful\n'  # its stop ran to the end: not killed
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
