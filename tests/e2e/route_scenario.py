"""The route walkthrough both backends run (test_route_cli.py on the hub,
tests/integration/test_route_zookeeper.py on ZooKeeper): Greeting 1.0.0 and 2.0.0 live,
a long-lived caller calling unpinned and pinned; `fannode route` switches its unpinned
calls, `--clear` switches them back, pinned ones never move."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import TESTS, Cluster, one_line_error, output, wait_until

SWITCH_WITHIN = 1.0  # seconds: issue 21's bound for every client to follow a route


def start_caller(cluster: Cluster, pin: str) -> subprocess.Popen:
    """tests/services/routecaller.py, killed with the cluster's other processes."""
    log = open(cluster.tmp_path / 'caller.log', 'w+')
    proc = subprocess.Popen([sys.executable, str(TESTS / 'services' / 'routecaller.py'), pin], env=cluster.env,
                            cwd=cluster.tmp_path, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    proc.log = log
    cluster.procs.append(proc)
    return proc


def calls(caller: subprocess.Popen) -> list[tuple[float, str, str]]:
    """(time, unpinned reply, pinned reply) per line the caller printed; errors as ('error', line)."""
    found = []
    for line in output(caller).splitlines():
        parts = line.split(' ', 2)
        if len(parts) == 3 and parts[0][:1].isdigit():
            found.append((float(parts[0]), parts[1], parts[2]))
    return found


def switched(caller: subprocess.Popen, since: float, pid: int, settled: int = 15) -> float | None:
    """When unpinned calls started after `since` went to `pid` for good (the last `settled`
    calls and every one after the first such), or None not yet."""
    after = [c for c in calls(caller) if c[0] >= since]
    firsts = [i for i, c in enumerate(after) if c[1] == str(pid)]
    if not firsts or len(after) - firsts[0] < settled:
        return None
    tail = after[firsts[0]:]
    assert all(c[1] == str(pid) for c in tail), 'unpinned calls went back and forth: %s' % tail[:20]
    return after[firsts[0]][0]


def route_walkthrough(cluster: Cluster) -> dict[str, float]:
    """Returns the switch times measured: seconds from running `fannode route` (its own
    start-up included) until unpinned calls went to the routed version for good."""
    one = cluster.start_instance('demo-versioned.yml', env={'VERSION': '1.0.0'})
    two = cluster.start_instance('demo-versioned.yml', env={'VERSION': '2.0.0'})
    wait_until(lambda: cluster.count('Greeting') == 2, 30, message='both versions registered')

    shown = cluster.run('discover')
    assert shown.returncode == 0 and shown.stdout == 'Greeting [2]  2.0.0 ×1, 1.0.0 ×1\n', shown
    summary = json.loads(cluster.run('discover', '--json', '--summary').stdout)['Greeting']
    assert summary == {'instances': 2, 'not_ready': 0, 'versions': {'2.0.0': 1, '1.0.0': 1},
                       'route': None, 'current': ['2.0.0']}

    caller = start_caller(cluster, '1')
    wait_until(lambda: len(calls(caller)) >= 10, 30, message='the caller to call')
    assert {c[1:] for c in calls(caller)} == {(str(two.pid), str(one.pid))}  # unpinned: the newest

    # A route no instance has: refused, naming the versions there are.
    line = one_line_error(cluster.run('route', 'Greeting', '3'), 3)
    assert line == ('error: no instance of Greeting matches version 3: there are 2.0.0 ×1, 1.0.0 ×1 '
                    '(--force sets the route anyway)')

    figures = {}
    for args, pid, name in ((('Greeting', '1'), one.pid, 'to 1'), (('Greeting', '--clear'), two.pid, 'cleared')):
        before = time.time()
        result = cluster.run('route', *args, '--json')
        done = time.time()
        assert result.returncode == 0, result.stderr
        state = json.loads(result.stdout)
        assert state['route'] == ('1' if name == 'to 1' else None)
        assert state['current'] == (['1.0.0'] if name == 'to 1' else ['2.0.0'])
        at = wait_until(lambda: switched(caller, before, pid), 30, message='unpinned calls to switch (%s)' % name)
        figures[name] = at - before  # from the command's start: its own start-up counts too
        assert at - done <= SWITCH_WITHIN, 'unpinned calls switched %s %.2fs after `fannode route`' % (name, at - done)

    # `fannode route Greeting`: the route and the versions live, for people and for scripts.
    cluster.run('route', 'Greeting', '1')
    shown = cluster.run('route', 'Greeting')
    assert shown.stdout == 'Greeting: unpinned calls go to 1.0.0 (route 1); live 2.0.0 ×1, 1.0.0 ×1\n', shown
    assert cluster.run('discover').stdout == 'Greeting [2]  2.0.0 ×1, 1.0.0 ×1  route 1\n'
    # `fannode request` follows the route; a pinned request does not.
    assert json.loads(cluster.run('request', 'Greeting.whoami', '--json').stdout)['reply'] == one.pid
    assert json.loads(cluster.run('request', 'Greeting@2.whoami', '--json').stdout)['reply'] == two.pid

    results = calls(caller)
    assert all(c[2] == str(one.pid) for c in results), 'a pinned call left its version'
    errors = [line for line in output(caller).splitlines() if ' error ' in line]
    assert not errors, errors[:5]
    return figures
