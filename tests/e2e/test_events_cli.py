"""Events across real processes: instances, `fannode emit`, `fannode subscribe`, and
what survives killed consumers and a killed hub."""
from __future__ import annotations

import json
import re
import signal
import subprocess

import pytest

from conftest import FANNODE, one_line_error, output, wait_until

pytestmark = pytest.mark.e2e


def counts(procs) -> list[int]:
    """Every `count` line the Listen instances printed, as the numbers they carried."""
    return [int(n) for p in procs for n in re.findall(r'\bcount count\.\w+ (\d+)$', output(p), re.M)]


@pytest.fixture
def greet_listen(cluster):
    cluster.start_hub()
    cluster.greeting = cluster.start_instance('demo.yml')
    cluster.listens = [cluster.start_instance('listen.yml') for _ in range(3)]
    return cluster


def test_a_greeting_reaches_one_listener_with_the_request_trace_id(greet_listen):
    c = greet_listen
    result = c.run('request', 'Greeting.greet', '{"name": "Joe"}', '--trace-id', 'trace-42')
    assert result.stdout == 'Hi, Joe!\n'
    wait_until(lambda: any('Somebody greeted Joe [trace-42]' in output(p) for p in c.listens),
               message='Listen to print the greeting')
    wait_until(lambda: all('Everyone heard of Joe' in output(p) for p in c.listens),
               message='every instance to run the broadcast handler')
    assert sum(output(p).count('Somebody greeted Joe') for p in c.listens) == 1


def test_fannode_emit_reaches_listen(greet_listen):
    c = greet_listen
    result = c.run('emit', 'greeted', '{"name": "Ann"}')
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith('emitted greeted ')
    wait_until(lambda: any('Somebody greeted Ann' in output(p) for p in c.listens))


def test_subscribe_prints_events_live_without_taking_them_from_services(greet_listen):
    c = greet_listen
    sub = subprocess.Popen([*FANNODE, 'subscribe', 'count.*', '--json'], env=c.env, cwd=c.tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert 'listening for count.*' in sub.stderr.readline()
        assert c.run('emit', 'count.a', '{"n": 7}').returncode == 0
        line = sub.stdout.readline()
        event = json.loads(line)
        assert event['type'] == 'count.a' and event['body'] == {'n': 7}
        assert event['headers']['source'] == 'cli' and len(event['headers']['id']) == 32
        wait_until(lambda: counts(c.listens) == [7], message='Listen to get its copy too')
    finally:
        sub.send_signal(signal.SIGINT)
        assert sub.wait(timeout=10) == 0
        sub.stdout.close()
        sub.stderr.close()


def test_events_are_spread_and_survive_a_consumer_killed_mid_stream(greet_listen):
    c = greet_listen
    assert c.run('request', 'Greeting.emit_many', '{"type": "count.x", "n": 300, "sleep": 0.02}').returncode == 0
    wait_until(lambda: len(counts(c.listens)) >= 60, message='the stream to start')
    victim = c.listens[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    wait_until(lambda: set(counts(c.listens)) == set(range(300)), timeout=30,
               message='every event handled, the dead instance\'s unacked ones by the others')
    assert len({p.pid for p in c.listens if counts([p])}) > 1


def test_events_queued_for_a_stopped_service_survive_a_killed_hub(cluster):
    cluster.start_hub()
    listen = cluster.start_instance('listen.yml')
    listen.send_signal(signal.SIGTERM)  # its durable queues stay on the hub
    assert listen.wait(timeout=10) == 0
    greeting = cluster.start_instance('demo.yml')
    assert cluster.run('request', 'Greeting.emit_many', '{"type": "count.q", "n": 50}').returncode == 0
    wait_until(lambda: _ready(cluster) == 50, message='50 events queued on the hub')
    cluster.hub.send_signal(signal.SIGKILL)
    cluster.hub.wait(timeout=10)
    cluster.start_hub()
    later = cluster.start_instance('listen.yml')
    wait_until(lambda: sorted(counts([later])) == list(range(50)), timeout=20,
               message='all 50 delivered after the restart')
    greeting.send_signal(signal.SIGTERM)


def test_a_failing_handler_is_retried_then_dead_lettered_with_a_log_line(cluster):
    cluster.start_hub()
    listen = cluster.start_instance('listen.yml')
    result = cluster.run('emit', 'fails')
    event_id = result.stderr.split()[2]
    wait_until(lambda: 'dead-lettered event %s' % event_id in output(cluster.hub),
               message='the hub to log the dead letter')
    assert re.findall(r'failing attempt (\d)', output(listen)) == ['1', '2', '3']
    assert output(listen).count('Traceback') == 1  # retries are one line each; the last failure in full


def _ready(cluster) -> int:
    """Events waiting in Listen.on_count on the hub, asked the way an operator would."""
    from fannode.hub.client import HubLink
    link = HubLink(cluster.url)
    try:
        return link.call('queues').get('Listen.on_count', {}).get('ready', 0)
    finally:
        link.close()



@pytest.mark.parametrize('args, code, message', [
    (['emit', 'a.*'], 2, "error: bad event type 'a.*'"),
    (['emit', 'greeted', '{bad'], 2, 'error: bad JSON body'),
    (['emit', 'greeted', '[1]'], 2, 'error: event greeted: the body must be a mapping of names to values, got list'),
    (['emit', 'greeted', '--delay', '-1'], 2, 'error: --delay must not be negative'),
    (['subscribe', 'a..b'], 2, "error: bad event pattern 'a..b'"),
    (['emit', 'greeted', '--events', 'hub://127.0.0.1:9'], 3,
     'error: cannot reach the event broker at hub://127.0.0.1:9: start one with `fannode hub`'),
    (['subscribe', 'greeted', '--events', 'hub://127.0.0.1:9'], 3,
     'error: cannot reach the event broker at hub://127.0.0.1:9'),
    (['emit', 'greeted', '--events', 'kafka://x'], 2, "error: no events backend for scheme 'kafka'"),
])
def test_bad_event_input_is_one_line(cluster, args, code, message):
    assert one_line_error(cluster.run(*args), code).startswith(message)
