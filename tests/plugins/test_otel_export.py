"""The OTLP plugin in a real `fannode instance`: its spans reach a (local, fake) OTLP/HTTP
receiver, decoded with the OpenTelemetry protobuf definitions."""
from __future__ import annotations

import http.server
import threading

import pytest

from conftest import wait_until

pytest.importorskip('opentelemetry.exporter.otlp.proto.http')
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver():
    received: list[ExportTraceServiceRequest] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers['Content-Length']))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            received.append((self.path, self.headers.get('x-team'), request))
            self.send_response(200)
            self.send_header('Content-Type', 'application/x-protobuf')
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


def spans(received):
    return [(resource, span) for _, _, request in received for resource in request.resource_spans
            for scope in resource.scope_spans for span in scope.spans]


def test_an_instances_spans_reach_the_otlp_receiver_with_fannodes_ids(cluster, tmp_path, receiver):
    port, received = receiver
    config = tmp_path / 'otel.yml'
    config.write_text(f'''interfaces:
  Greeting:
    class: demo:Greeting
plugins:
  - class: fannode.contrib.otel:OtlpPlugin
    endpoint: http://127.0.0.1:{port}/v1/traces
    headers: {{x-team: blue}}
    schedule_delay: 0.2
''')
    cluster.start_hub()
    cluster.start_instance(str(config))
    trace_id = 'ab' * 16
    result = cluster.run('request', 'Greeting.greet', '{"name": "Joe"}', '--trace-id', trace_id)
    assert result.returncode == 0, result.stderr
    assert cluster.run('request', 'Greeting.greet', '{"name": "Ann"}', '--trace-id', 'order-17').returncode == 0
    wait_until(lambda: len([s for _, s in spans(received) if s.name == 'Greeting.greet']) == 2, 20,
               message='two Greeting.greet spans at the receiver')
    assert {(path, team) for path, team, _ in received} == {('/v1/traces', 'blue')}
    found = {s.trace_id.hex(): (r, s) for r, s in spans(received) if s.name == 'Greeting.greet'}
    resource, span = found[trace_id]
    attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert attributes['service.name'] == 'Greeting'
    assert span.kind == span.SPAN_KIND_SERVER and len(span.span_id) == 8
    assert span.end_time_unix_nano > span.start_time_unix_nano
    # a trace id a caller chose is hashed to OTLP's size, and kept as an attribute
    other = next(s for t, (_, s) in found.items() if t != trace_id)
    assert {a.key: a.value.string_value for a in other.attributes}['fannode.trace'] == 'order-17'
