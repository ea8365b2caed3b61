"""Liveness probes and resource limits, end to end: `fannode up` with real processes, a
SIGSTOPped instance, a failing exec and http probe, a memory hog, an open-files limit."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import ROOT, free_port, wait_until
from test_node import Node

pytestmark = pytest.mark.e2e

HOG = '''import time
chunks = []
while True:  # 50 MB/s, every page touched: RSS grows, not just address space
    chunks.append(b'x' * (5 << 20))
    time.sleep(0.1)
'''


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def instances(node: Node) -> set[int]:
    """The greeting processes the node runs now."""
    found = set()
    for child in psutil.Process(node.proc.pid).children():
        try:
            if 'greeting.yml' in ' '.join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            pass
    return found


def live(block: dict) -> dict[int, int]:
    """index → pid of the processes not being stopped."""
    return {p['index']: p['pid'] for p in block['processes'] if not p['stopping']}


def test_a_stopped_instance_is_replaced_by_the_default_rpc_probe(node):
    period, failures = 1, 3
    node.write(f'''registry: {node.hub}
env:
  PYTHONPATH: {ROOT / 'services'}
instances:
  greeting:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
    numprocesses: 2
    liveness: {{period: {period}, timeout: 0.3, failures: {failures}}}
''')
    node.up()
    node.wait_for('cluster ready', 60)
    node.remember_children()
    # probed and answering: healthy, and the probe is the default one
    wait_until(lambda: all(p['healthy'] for p in node.ps()['greeting']['processes']), 20,
               message='both instances healthy')
    block = node.ps()['greeting']
    assert block['liveness']['probe'] == 'rpc ping' and block['restarts'] == 0
    victim = live(block)[1]
    before = instances(node)
    os.kill(victim, signal.SIGSTOP)
    stopped = time.monotonic()
    # watched in this process, not through `fannode ps` (a CLI start costs a good part of a second)
    wait_until(lambda: instances(node) - before, 30, interval=0.02, message='a new greeting process')
    took = time.monotonic() - stopped
    assert took <= period * failures + 1, took
    wait_until(lambda: live(node.ps()['greeting']).get(1) not in (None, victim), 10, message='greeting.1 replaced')
    block = node.ps()['greeting']
    assert block['last_exit'] == 'liveness failed: rpc ping timed out after 0.3s (3 in a row)'
    assert block['restarts'] == 1 and sorted(live(block)) == [1, 2]  # the replacement took index 1
    assert 'greeting.1 liveness failed: rpc ping timed out after 0.3s (3 in a row); restarting' in node.output()
    # SIGTERM then SIGCONT: the frozen instance stops (or is killed after stop_timeout)
    wait_until(lambda: gone(victim), 20, message='the stopped instance gone')
    wait_until(lambda: node.ps()['greeting']['state'] == 'ready', 30, message='greeting ready again')
    print('SIGSTOP to replacement: %.2fs (bound %ds)' % (took, period * failures + 1))


def test_exec_and_http_probes_on_plain_commands(node):
    port = free_port()
    (node.dir / 'ok').write_text('')
    node.write(f'''registry: {node.hub}
instances:
  worker:
    command: sleep 600
    liveness: {{exec: 'test -f ok', period: 0.3, timeout: 0.3, failures: 2}}
  web:
    command: {sys.executable} -m http.server --bind 127.0.0.1 {port}
    ready: {{tcp: {port}}}
    liveness: {{http: 'http://127.0.0.1:{port}/', period: 0.3, timeout: 0.3, failures: 2}}
''')
    node.up()
    node.wait_for('cluster ready', 60)
    node.remember_children()
    wait_until(lambda: all(p['healthy'] for b in node.ps().values() for p in b['processes']), 20,
               message='every process healthy')
    ps = node.ps()
    assert ps['worker']['liveness']['probe'] == 'exec test -f ok'
    worker, web = live(ps['worker'])[1], live(ps['web'])[1]

    (node.dir / 'ok').unlink()  # the exec probe fails from now on
    wait_until(lambda: node.ps()['worker']['restarts'] >= 1, 20, message='worker restarted')
    (node.dir / 'ok').write_text('')
    assert node.ps()['worker']['last_exit'] == 'liveness failed: exec test exited with status 1 (2 in a row)'
    wait_until(lambda: gone(worker), 20, message='the old worker gone')
    wait_until(lambda: any(p['healthy'] for p in node.ps()['worker']['processes']), 20,
               message='the new worker healthy')
    restarts = node.ps()['worker']['restarts']  # 1, or more if the file came back late for the next one

    os.kill(web, signal.SIGSTOP)  # accepts (the kernel does) but never answers
    wait_until(lambda: node.ps()['web']['restarts'] >= 1, 20, message='web restarted')
    assert node.ps()['web']['last_exit'] == (
        'liveness failed: http http://127.0.0.1:%d/ gave no answer below 500 within 0.3s (2 in a row)' % port)
    wait_until(lambda: gone(web), 20, message='the stopped web server gone')
    wait_until(lambda: node.ps()['web']['state'] == 'ready', 20, message='web ready again')
    assert node.ps()['worker']['restarts'] == restarts  # its probe passes again: left alone


def test_a_memory_hog_is_killed_for_its_limit_and_a_quiet_process_is_not(node):
    (node.dir / 'hog.py').write_text(HOG)
    node.write(f'''registry: {node.hub}
instances:
  hog:
    command: {sys.executable} hog.py
    restart: never
    limits: {{memory: 64M}}
  quiet:
    command: {sys.executable} -c "import time; time.sleep(600)"
    limits: {{memory: 64M, nofile: 200}}
''')
    node.up()
    node.wait_for('cluster ready', 60)
    node.remember_children()
    quiet = live(node.ps()['quiet'])[1]
    wait_until(lambda: node.ps()['hog']['last_exit'], 30, message='the hog killed')
    ps = node.ps()
    mechanism = ps['hog']['limits']['mechanism']
    assert mechanism in ('cgroup', 'rlimit+watchdog')
    assert ps['hog']['last_exit'].startswith('killed: memory limit 64 MiB ('), ps['hog']['last_exit']
    assert ps['hog']['running'] == 0  # restart: never
    assert 'hog.1 killed: memory limit 64 MiB' in node.output()
    assert ps['quiet']['restarts'] == 0 and live(ps['quiet']) == {1: quiet} and ps['quiet']['last_exit'] == ''
    assert ps['quiet']['limits'] == dict(ps['quiet']['limits'], memory=64 << 20, nofile=200)
    # the open-files limit, as the kernel holds it for the child
    limits = Path('/proc/%d/limits' % quiet).read_text()
    assert any(line.startswith('Max open files') and line.split()[3:5] == ['200', '200']
               for line in limits.splitlines()), limits
    print('limits enforced with', mechanism, ps['hog']['limits'].get('why', ''))
