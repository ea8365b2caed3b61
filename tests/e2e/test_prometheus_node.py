"""node.yml `metrics:` end to end: /metrics scraped from a running node and read with
Prometheus' own parser."""
from __future__ import annotations

import os
import signal
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port, one_line_error, wait_until
from test_node import workshop
from test_observability import greet

pytestmark = pytest.mark.e2e


def scrape(port: int) -> dict:
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=10) as response:
        assert response.headers['Content-Type'].startswith('text/plain')
        text = response.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def value(found: dict, family: str, sample: str | None = None, **labels: str) -> float:
    """The sum of the samples of `family` whose labels include `labels`."""
    return sum(s.value for s in found.get(family, ()) if s.name == (sample or family)
               and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_show_each_instance_up_restarts_after_a_kill_and_rpc_histograms_after_calls(node):
    port = free_port()
    node.write(workshop(node.hub, node.web_port, greeting=2, listen=1, web=1,
                        extra='metrics: {port: %d, interval: 0.3}\n' % port))
    node.up()
    node.wait_for('cluster ready', 90)
    assert 'metrics at http://127.0.0.1:%d/metrics' % port in node.output()

    found = {}

    def scraped(check) -> bool:
        found.update(scrape(port))
        return check(found)

    wait_until(lambda: scraped(lambda f: value(f, 'fannode_block_ready', block='greeting') == 1), 20,
               message='greeting ready in /metrics')
    up = {s.labels['process']: s for s in found['fannode_instance_up']}
    assert {name for name in up} >= {'greeting.1', 'greeting.2', 'listen.1', 'web.1', 'hub.1'}
    assert all(s.value == 1 for s in up.values())
    pids = {s.labels['process']: int(s.labels['pid']) for s in up.values()}
    assert value(found, 'fannode_instance_rss_bytes', process='greeting.1') > 1_000_000
    # a forked instance may not have used a clock tick (10 ms) yet: it does, serving and heartbeating
    wait_until(lambda: scraped(lambda f: value(f, 'fannode_instance_cpu_seconds', 'fannode_instance_cpu_seconds_total',
                                               process='greeting.1') > 0), 30, message='greeting.1 CPU time in /metrics')
    assert value(found, 'fannode_block_restarts', 'fannode_block_restarts_total', block='greeting') == 0

    os.kill(pids['greeting.1'], signal.SIGKILL)
    wait_until(lambda: scraped(lambda f: value(f, 'fannode_block_restarts', 'fannode_block_restarts_total',
                                               block='greeting') == 1), 30, message='the restart counted')
    wait_until(lambda: scraped(lambda f: len([s for s in f['fannode_instance_up'] if s.labels['block'] == 'greeting'
                                              and s.value == 1]) == 2), 30, message='greeting back to 2 up')

    for name in ('Ann', 'Bob', 'Cid', 'Dee', 'Eve'):
        greet(node.web_port, name)
    sample = 'fannode_rpc_duration_seconds_count'
    wait_until(lambda: scraped(lambda f: value(f, 'fannode_rpc_duration_seconds', sample, block='greeting',
                                               service='Greeting', method='greet') == 5), 30,
               message='5 greet calls in the histograms')
    inf = value(found, 'fannode_rpc_duration_seconds', 'fannode_rpc_duration_seconds_bucket', le='+Inf',
                service='Greeting', method='greet')
    assert inf == 5
    assert value(found, 'fannode_rpc_requests', 'fannode_rpc_requests_total', method='greet') == 5
    assert value(found, 'fannode_http_requests', 'fannode_http_requests_total', block='web') >= 5


def test_a_metrics_port_in_use_is_a_one_line_error_and_nothing_starts(node):
    import socket
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        node.write('registry: %s\nmetrics: {port: %d}\ninstances:\n  a: sleep 600\n' % (node.hub, port))
        result = node.cli('up')
    assert one_line_error(result, 1) == 'error: metrics: cannot listen on 127.0.0.1:%d: Address already in use' % port
