"""Hard and soft dependencies in real processes: an instance whose hard dependency has no
instance is listed as not ready, answers 503 on /_health and gets no calls; starting the
dependency makes it ready within 1 s, and stopping it makes it not ready again."""
from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import pytest

from conftest import free_port, one_line_error, output, wait_until

pytestmark = pytest.mark.e2e


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def needy(cluster):
    cluster.start_hub()
    port = free_port()
    cluster.needy = cluster.start_instance('needy.yml', env={'WEB_PORT': str(port)})
    cluster.health = 'http://127.0.0.1:%d/_health' % port
    return cluster


def test_an_instance_missing_a_hard_dependency_is_listed_not_ready_and_gets_no_calls(needy):
    found = json.loads(needy.run('discover', '--json').stdout)
    [orders] = found['Orders']
    assert orders['ready'] is False
    assert orders['meta']['missing'] == ['Greeting', 'Listen']  # hard first; Listen is soft
    assert needy.run('discover').stdout == 'Front [1, 1 not ready]\nOrders [1, 1 not ready]\n'
    table = needy.run('discover', '--instances').stdout
    assert 'no (needs Greeting)' in ' '.join(table.split())  # the column may wrap at 80

    status, body = get(needy.health)
    assert status == 503 and json.loads(body) == {'status': 'not ready', 'missing': ['Greeting']}

    error = one_line_error(needy.run('request', 'Orders.place', '{"name": "Joe"}'), 3)  # unavailable
    assert 'no ready instance of Orders' in error and 'Greeting' in error
    assert 'placing an order' not in output(needy.needy)
    assert 'hard dependency Greeting has no ready instance; not ready until it has' in output(needy.needy)


def test_starting_the_dependency_makes_it_ready_within_a_second_and_stopping_it_not(needy):
    greeting = needy.start_instance('demo.yml')  # returns once Greeting is registered
    wait_until(lambda: get(needy.health)[0] == 200, timeout=1.5, message='/_health to answer 200')
    [orders] = json.loads(needy.run('discover', 'Orders', '--json').stdout)['Orders']
    assert orders['ready'] is True and orders['meta']['missing'] == ['Listen']
    assert needy.run('discover').stdout == 'Front [1]\nGreeting [1]\nOrders [1]\n'
    result = needy.run('request', 'Orders.place', '{"name": "Joe"}')
    assert (result.returncode, result.stdout) == (0, 'Hi, Joe!\n'), result.stderr

    greeting.send_signal(signal.SIGTERM)  # leaves discovery at once
    wait_until(lambda: get(needy.health)[0] == 503, timeout=5, message='/_health to answer 503 again')
    assert 'hard dependency Greeting has a ready instance again; ready' in output(needy.needy)
