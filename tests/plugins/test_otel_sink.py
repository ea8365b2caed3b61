"""The OTLP plugin's sink runs on the request's path and its on_stop inside the instance's
stop budget: neither may raise or wait for a collector that is away."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip('opentelemetry.exporter.otlp.proto.http')

from fannode.contrib.otel import OtlpPlugin  # noqa: E402
from fannode.core import trace  # noqa: E402
from fannode.core.plugins import PluginError  # noqa: E402


class Container:
    id, interfaces, version = 'i-1', ['Greeting'], '1.0'


@pytest.fixture
def plugin():
    plugin = OtlpPlugin(endpoint='http://127.0.0.1:9/v1/traces', shutdown_timeout=0.1)
    before = trace.sink
    yield plugin
    trace.sink = before
    plugin.processor.shutdown = lambda: None


@pytest.mark.parametrize('record', [
    {'kind': 'span', 'name': 'x'},                                   # no ts, trace, span: KeyError
    {'kind': 'span', 'ts': 'late', 'trace': 'a', 'span': 'b'},       # TypeError
    {'kind': 'span', 'ts': 1.0, 'trace': 'a', 'span': 'b', 'duration_ms': 'x'},  # ValueError
    {'kind': 'span', 'ts': 1.0, 'trace': 7, 'span': 'b'},            # AttributeError
])
def test_a_record_the_plugin_cannot_read_is_not_sent_and_nothing_raises(plugin, record):
    seen = []
    trace.sink = seen.append
    plugin.on_start(Container())
    trace.sink(record)
    assert seen == [record]  # where spans went before (the log hub) still gets it


def test_on_stop_does_not_wait_for_a_collector_that_is_away(plugin):
    stuck, called = threading.Event(), threading.Event()

    def shutdown():
        called.set()
        stuck.wait(30)  # an export to a collector that does not answer
    plugin.processor.shutdown = shutdown
    plugin.on_start(Container())
    plugin.on_stop(Container())  # returns after shutdown_timeout, not when the export gives up
    assert called.is_set() and not stuck.is_set()
    stuck.set()


def test_a_bad_shutdown_timeout_is_refused():
    with pytest.raises(PluginError, match='shutdown_timeout: expected seconds from 0 to 60'):
        OtlpPlugin(shutdown_timeout=-1)


def test_an_http_span_carrying_its_access_line_keeps_the_line_out_of_its_attributes(plugin):
    plugin.on_start(Container())
    span = plugin.span({'kind': 'span', 'ts': 1.0, 'trace': 'a' * 32, 'span': 'b' * 16, 'type': 'http',
                        'name': 'GET /x', 'status': 'ok', 'duration_ms': 2.0, 'code': 200, 'level': 'INFO',
                        'logger': 'fannode.web.access', 'msg': 'GET /x 200 2.0ms'})
    assert dict(span.attributes) == {'fannode.type': 'http', 'fannode.trace': 'a' * 32, 'fannode.code': 200}
