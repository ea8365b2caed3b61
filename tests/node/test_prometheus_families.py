"""What /metrics says about service instances, read back with Prometheus' own parser."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fannode.core.metrics import BUCKETS, Metrics
from fannode.node.prometheus import Snapshot, service_families


def scrape(families) -> dict:
    snapshot = Snapshot()
    snapshot.families = families
    registry = CollectorRegistry(auto_describe=False)
    registry.register(snapshot)
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_each_call_lands_in_one_bucket_and_the_histogram_adds_up_cumulatively():
    metrics = Metrics()
    for seconds in (0.0001, 0.0003, 0.002, 0.2, 30.0):
        metrics.record('Greeting.greet', seconds, error=seconds > 1)
    metrics.record('Greeting.get_metrics', 0.001, False)
    metrics.record('GET /greet', 0.004, False, kind='http')
    reply = metrics.snapshot()
    assert sum(reply['rpc']['Greeting.greet']['buckets']) == 5 and len(BUCKETS) + 1 == 15

    found = scrape(service_families([(['greeting', 'greeting.1', '42'], 'Greeting', reply)]))
    rpc = {(s.name, s.labels.get('le')): s.value for s in found['fannode_rpc_duration_seconds'].samples}
    assert rpc['fannode_rpc_duration_seconds_bucket', '0.0005'] == 2
    assert rpc['fannode_rpc_duration_seconds_bucket', '0.0025'] == 3
    assert rpc['fannode_rpc_duration_seconds_bucket', '0.25'] == 4
    assert rpc['fannode_rpc_duration_seconds_bucket', '+Inf'] == 5
    assert rpc['fannode_rpc_duration_seconds_count', None] == 5
    assert abs(rpc['fannode_rpc_duration_seconds_sum', None] - 30.2024) < 1e-9
    sample = found['fannode_rpc_requests'].samples[0]
    assert sample.labels == {'block': 'greeting', 'process': 'greeting.1', 'pid': '42', 'service': 'Greeting',
                             'method': 'greet'} and sample.value == 5  # get_metrics, the node's asking, left out
    assert found['fannode_rpc_errors'].samples[0].value == 1
    http = found['fannode_http_requests'].samples[0]
    assert http.labels['service'] == 'Greeting' and http.labels['method'] == 'GET /greet' and http.value == 1


def test_an_instance_without_buckets_still_has_its_counters():
    old = {'rpc': {'A.b': {'calls': 3, 'errors': 0, 'p99_ms': 1.0}}}
    found = scrape(service_families([(['a', 'a.1', '7'], 'A', old)]))
    assert found['fannode_rpc_requests'].samples[0].value == 3
    assert found['fannode_rpc_duration_seconds'].samples == []


def test_a_bad_reply_is_left_out_and_the_scrape_still_has_the_other_instances():
    from fannode.node.prometheus import usable
    good = {'rpc': {'A.b': {'calls': 3, 'errors': 1, 'buckets': [0] * (len(BUCKETS) + 1), 'sum_s': 0.1}}}
    bad = [{'rpc': {'A.b': {'calls': 'lots'}}}, {'rpc': {'A.b': {'calls': 1, 'buckets': ['x']}}},
           {'rpc': ['A.b']}, {'http': {'GET /': {'errors': float('nan')}}}, {'rpc': {'A.b': {'sum_s': True}}}, 'x']
    assert usable(good) and not any(usable(reply) for reply in bad)
    replies = [(['a', 'a.%d' % i, str(i)], 'A', reply) for i, reply in enumerate([good] + bad)]
    found = scrape(service_families([r for r in replies if usable(r[2])]))  # as Exporter._services does
    assert [(s.labels['process'], s.value) for s in found['fannode_rpc_requests'].samples] == [('a.0', 3)]


class FakeBlock:
    def __init__(self, name, ready, running, desired, restarts):
        self.name, self.is_ready, self.running, self.desired, self.restarts = name, ready, running, desired, restarts


def test_a_rolling_block_and_its_next_processes_are_one_block_series():
    from fannode.node.prometheus import by_name
    found = by_name([FakeBlock('web', True, 2, 2, 1), FakeBlock('web', False, 1, 2, 0), FakeBlock('db', True, 1, 1, 0)])
    assert found == {'web': (0.0, 3, 2, 1), 'db': (1.0, 1, 1, 0)}
