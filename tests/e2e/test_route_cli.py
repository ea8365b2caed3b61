"""`fannode route` on the hub: unpinned calls of a running client follow the route within a
second, pinned calls never move, `discover` shows the versions (route_scenario.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from route_scenario import route_walkthrough  # noqa: E402

pytestmark = pytest.mark.e2e


def test_route_switches_unpinned_calls_on_the_hub(cluster):
    cluster.start_hub()
    figures = route_walkthrough(cluster)
    print('switch after fannode route: %s' % ', '.join('%s %.2fs' % kv for kv in figures.items()))


def test_route_refuses_bad_input_in_one_line(cluster):
    from conftest import one_line_error
    cluster.start_hub()
    assert one_line_error(cluster.run('route', 'Greeting', '^^1'), 2).startswith("error: version '^^1': not a valid range")
    assert one_line_error(cluster.run('route', 'Greeting', '1', '--clear'), 2) == \
        'error: --clear removes the route: give no VERSION with it'
    assert one_line_error(cluster.run('route', 'Bad/Name'), 2).startswith("error: bad config key 'fannode.route.Bad/Name'")
    assert one_line_error(cluster.run('route', 'Greeting', '2'), 3) == \
        'error: no instance of Greeting is registered (--force sets the route anyway)'
    forced = cluster.run('route', 'Greeting', '2', '--force')
    assert forced.returncode == 0 and forced.stdout == 'Greeting: no instance registered; route 2\n', forced
    assert cluster.run('route', '--json').stdout == '[]\n'


def test_a_new_version_takes_unpinned_calls_once_ready_and_nothing_fails(cluster):
    """No route: unpinned calls go to the newest version as soon as one of its instances is
    ready, and back to the old one when it stops (gracefully); pinned calls never move, and
    not one call fails on the way."""
    import signal

    from conftest import output, wait_until
    from route_scenario import calls, start_caller, switched

    cluster.start_hub()
    one = cluster.start_instance('demo-versioned.yml', env={'VERSION': '1.0.0'})
    caller = start_caller(cluster, '1')
    wait_until(lambda: len(calls(caller)) >= 10, 30, message='the caller to call')
    assert {c[1:] for c in calls(caller)} == {(str(one.pid), str(one.pid))}  # one version: as ever
    two = cluster.start_instance('demo-versioned.yml', env={'VERSION': '2.0.0'})
    wait_until(lambda: switched(caller, 0, two.pid), 30, message='unpinned calls to reach 2.0.0')
    two.send_signal(signal.SIGTERM)
    stopped = two.wait(timeout=30)
    assert stopped == 0
    last = calls(caller)[-1][0]
    wait_until(lambda: len([c for c in calls(caller) if c[0] > last]) >= 15, 30, message='calls after 2.0.0 left')
    assert all(c[1] == str(one.pid) for c in calls(caller) if c[0] > last)
    assert all(c[2] == str(one.pid) for c in calls(caller))  # pinned to 1: never on 2.0.0
    errors = [line for line in output(caller).splitlines() if ' error ' in line]
    assert not errors, errors[:5]
    shown = cluster.run('route', 'Greeting')
    assert shown.stdout == 'Greeting: unpinned calls go to every instance: one version live; live 1.0.0 ×1\n'
