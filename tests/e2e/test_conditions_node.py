"""depends_on conditions end to end (issue 20, item 1): a one-shot migration before web,
a failed one that keeps web from starting, `restart: true`, and the stop in reverse
start order. Real `fannode up`, real processes; the node fixture kills what it started."""
from __future__ import annotations

import os
import re
import signal

import pytest

from conftest import free_port, wait_until
from test_node import Node

pytestmark = pytest.mark.e2e

WEB = '''python3 -c "import os, time; print('web sees migrated:', os.path.exists('migrated'), flush=True); time.sleep(600)"'''


def test_web_starts_only_after_the_migration_completed_and_sees_its_work(node):
    node.write(f'''registry: {node.hub}
instances:
  web:
    command: {WEB}
    depends_on:
      migrate: {{condition: completed_successfully}}
  migrate:
    command: sh -c "sleep 1; touch migrated; echo migration done"
    restart: never
''')
    node.up()
    node.wait_for('cluster ready', 60)
    node.wait_for('web sees migrated:', 30)
    out = node.output()
    assert 'web sees migrated: True' in out
    assert out.index('migrate.1 exited with status 0; not restarted') < out.index('web.1 started')
    assert re.search(r'cluster ready in [\d.]+s: migrate completed, web 1/1', out), out
    ps = node.ps()
    assert (ps['migrate']['state'], ps['migrate']['failed']) == ('completed', None)
    assert (ps['web']['state'], ps['web']['running']) == ('ready', 1)


def test_a_failed_migration_keeps_web_from_starting_and_says_so_in_one_line(node):
    node.write(f'''registry: {node.hub}
instances:
  migrate:
    command: sh -c "echo cannot migrate; exit 3"
    restart: never
  web:
    command: {WEB}
    depends_on:
      migrate: {{condition: completed_successfully}}
  other: sleep 600
''')
    node.up()
    node.wait_for('cluster up with failures', 60)
    out = node.output()
    assert 'node web not started: migrate exited with status 3\n' in out
    assert re.search(r'cluster up with failures in [\d.]+s: .*; failed: migrate, web', out), out
    assert 'web.1 started' not in out
    ps = node.ps()
    assert (ps['web']['state'], ps['web']['running']) == ('failed', 0)
    assert ps['migrate']['state'] == 'failed' and 'exited with status 3' in ps['migrate']['failed']
    assert ps['other']['state'] == 'ready'


def test_started_does_not_wait_for_readiness(node):
    port = free_port()  # nothing listens there: db is never ready
    node.write(f'''registry: {node.hub}
instances:
  db:
    command: sleep 600
    ready: {{tcp: {port}, timeout: 300}}
  app:
    command: sleep 600
    depends_on:
      db: {{condition: started}}
''')
    node.up()
    node.wait_for('app.1 started', 60)
    assert node.ps()['db']['state'] == 'starting'


def pid_of(node: Node, block: str) -> int:
    processes = node.ps()[block]['processes']
    return processes[0]['pid'] if processes else 0


def test_restart_true_restarts_the_dependents_once_per_restart_of_their_dependency(node):
    node.write(f'''registry: {node.hub}
instances:
  db:
    command: sleep 600
    numprocesses: 2
  app:
    command: sleep 600
    depends_on:
      db: {{condition: started, restart: true}}
  reader:
    command: sleep 600
    depends_on: [db]
''')
    node.up()
    node.wait_for('cluster ready', 60)
    db, app, reader = (pid_of(node, b) for b in ('db', 'app', 'reader'))
    mark = len(node.output())
    os.kill(db, signal.SIGKILL)  # a crash: db.1 is replaced within db, as compose's runtime does: app stays
    node.wait_for('db.1 killed by SIGKILL', 30, after=mark)
    wait_until(lambda: node.ps()['db']['running'] == 2, 30, message='db.1 replaced')
    result = node.cli('restart', 'db')  # a restart asked for restarts them, once
    assert result.returncode == 0, result.stderr
    node.wait_for('app restarting: db restarted (depends_on db: restart: true)', 30, after=mark)
    wait_until(lambda: pid_of(node, 'app') not in (0, app), 30, message='app restarted')
    assert pid_of(node, 'reader') == reader  # a plain depends_on: not restarted
    app = pid_of(node, 'app')
    after = len(node.output())
    result = node.cli('rollout', 'db')  # two processes replaced: one restart of db, one of app
    assert result.returncode == 0, result.stderr
    node.wait_for('app restarting: db restarted', 30, after=after)
    wait_until(lambda: pid_of(node, 'app') not in (0, app) and node.ps()['app']['running'] == 1, 30,
               message='app restarted again')
    node.wait_for('app.1 started', 30, after=after)
    out = node.output()[mark:]
    assert out.count('app restarting') == 2, out
    assert pid_of(node, 'reader') == reader


def test_the_node_stops_dependents_first_in_reverse_start_order(node):
    node.write(f'''registry: {node.hub}
instances:
  c:
    command: sleep 600
    depends_on: [b]
  a: sleep 600
  b:
    command: sleep 600
    depends_on: [a]
''')
    node.up()
    node.wait_for('cluster ready', 60)
    node.stop()
    out = node.output()
    stops = [m.group(1) for m in re.finditer(r'node (\w+)\.1 stopped', out)]
    assert stops[:3] == ['c', 'b', 'a'], out
    assert out.index('c.1 stopped') < out.index('b.1 stopped') < out.index('a.1 stopped')
    assert out.index('a.1 stopped') < out.index('hub.1 stopped')
