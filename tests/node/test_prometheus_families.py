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
    assert sample.labels == {'block': 'greeting', 'instance': 'greeting.1', 'pid': '42', 'service': 'Greeting',
                             'method': 'greet'} and sample.value == 5  # get_metrics, the node's asking, left out
    assert found['fannode_rpc_errors'].samples[0].value == 1
    http = found['fannode_http_requests'].samples[0]
    assert http.labels['service'] == 'Greeting' and http.labels['method'] == 'GET /greet' and http.value == 1


def test_an_instance_without_buckets_still_has_its_counters():
    old = {'rpc': {'A.b': {'calls': 3, 'errors': 0, 'p99_ms': 1.0}}}
    found = scrape(service_families([(['a', 'a.1', '7'], 'A', old)]))
    assert found['fannode_rpc_requests'].samples[0].value == 3
    assert found['fannode_rpc_duration_seconds'].samples == []
