"""What `fannode top` computes from get_metrics, discovery and the node's ps, without a
cluster: figures per service, rates, rows for what the node runs beside the services."""
from __future__ import annotations

from fannode.discovery.base import InstanceInfo
from fannode.exceptions import RemoteError
from fannode.tui.rows import Rates, build_rows, figures


def test_figures_take_a_services_own_calls_and_treat_new_sections_as_optional():
    metrics = {
        'rpc': {'Web.index': {'calls': 5, 'errors': 1, 'p99_ms': 3.0},
                'Web.get_metrics': {'calls': 90, 'errors': 0, 'p99_ms': 80.0},   # top's own polling
                'Other.x': {'calls': 7, 'errors': 7, 'p99_ms': 9.0}},
        'http': {'GET /greet': {'calls': 11, 'errors': 2, 'p99_ms': 4.0}},     # the instance's
        'event': {'Web.on_greeted': {'calls': 3, 'errors': 0}, 'Other.on_x': {'calls': 100, 'errors': 5}},
        'custom': {'greeted': 4},
        'process': {'pid': 1, 'rss': 1048576, 'cpu_percent': 2.5, 'uptime': 12.0, 'greenlets': 9},
    }
    f = figures(metrics, 'Web')
    assert (f.calls, f.errors, f.p99, f.events, f.http) == (5, 1 + 2, 3.0, 3, 11)
    assert (f.cpu, f.rss, f.uptime) == (2.5, 1048576, 12.0)
    old = figures({'rpc': {'Web.index': {'calls': 0, 'errors': 0, 'p99_ms': 0.0}}, 'process': {}}, 'Web')
    assert (old.calls, old.p99, old.events, old.http, old.cpu) == (0, None, None, None, None)


def test_rates_need_two_polls_and_start_over_when_a_counter_does():
    rates = Rates()
    assert rates.rate('k', 100, 10.0) is None
    assert rates.rate('k', 150, 12.0) == 25.0
    assert rates.rate('k', 3, 13.0) is None      # the instance restarted
    assert rates.rate('k', 13, 14.0) == 10.0
    rates.forget_untouched()
    rates.forget_untouched()                     # not seen in a whole poll: forgotten
    assert rates.rate('k', 20, 15.0) is None


def test_an_instance_that_refuses_get_metrics_is_an_error_and_a_block_at_zero_stays_scalable():
    info = InstanceInfo(id='a' * 32, endpoint='tcp://h:1', services=['Old'], pid=7, host='elsewhere')
    ps = {'blocks': [{'name': 'worker', 'state': 'stopped', 'desired': 0, 'running': 0, 'ready': 0,
                      'restarts': 0, 'processes': []}]}
    rows = build_rows({'Old': [info]}, {info.id: RemoteError('no get_metrics here')}, ps, Rates(), 1.0, 2.0, 'vm')
    assert [(r.key, r.state, r.count) for r in rows] == [
        ('s:Old', 'degraded', '1/1'), ('i:Old:' + 'a' * 32, 'error', ''), ('b:worker', 'stopped', '0/0')]
    assert rows[2].blocks == ('worker',)  # `+` on it asks the node for one process


def test_a_poll_looks_for_the_node_once(tmp_path, monkeypatch):
    """Whether a node runs was looked at before the ps call, then again inside it."""
    from fannode.core import wire
    from fannode.node import client
    from fannode.tui.source import TopSource
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    looks = []

    class Counted(client.NodeClient):
        up = False

        @property
        def running(self):
            looks.append(self.up)
            return self.up

    source = TopSource('local://top-tests', str(tmp_path / 'node.yml'))
    source.node = Counted(source.node_file)
    assert source._node_ps() == (None, '') and looks == [False]  # no node: not a problem either
    Counted.up = True
    ps = {'pid': 1, 'blocks': []}
    monkeypatch.setattr(client, 'request', lambda endpoint, subject, body, timeout: wire.Message(
        wire.REP, 1, subject, ps))
    assert source._node_ps() == (ps, '') and looks == [False, True]
