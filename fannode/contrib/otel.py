"""fannode's spans to an OpenTelemetry collector over OTLP/HTTP: `pip install fannode[otel]`
(opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http), then in a service config:

    plugins:
      - class: fannode.contrib.otel:OtlpPlugin
        endpoint: http://collector:4318/v1/traces   # the default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
        headers: {authorization: Bearer ...}

Each span fannode makes (an RPC handled, an event handled, an HTTP request served: the
`kind: span` records of `fannode trace`) becomes an OTLP span with the same trace id, span
id and parent, so a trace that crosses fannode and other instrumented code is one trace in
Jaeger, Tempo or Honeycomb. The spans are sent in batches by the SDK's BatchSpanProcessor
(its queue is bounded: when the collector is away, spans are dropped, never the request
slowed); what is queued is sent when the instance stops.
"""
from __future__ import annotations

import hashlib
from typing import Any

from fannode.core import trace
from fannode.core.plugins import Plugin, PluginError, require

# fannode's span type → OTLP span kind (opentelemetry.trace.SpanKind member names)
KINDS = {'rpc': 'SERVER', 'http': 'SERVER', 'event': 'CONSUMER'}
FIELDS = ('kind', 'ts', 'trace', 'span', 'parent', 'type', 'name', 'status', 'duration_ms')


def number(text: str, digits: int) -> int:
    """An id as OTLP wants it: fannode's are hex of that many digits; one a caller chose
    (`--trace-id order-17`) is hashed to that size, the same way in every process."""
    if len(text) == digits:
        try:
            return int(text, 16)
        except ValueError:
            pass
    return int(hashlib.sha256(text.encode()).hexdigest()[:digits], 16) or 1


class OtlpPlugin(Plugin):
    def __init__(self, endpoint: str | None = None, headers: dict[str, str] | None = None,
                 service_name: str | None = None, timeout: float = 10.0, schedule_delay: float = 1.0):
        require('opentelemetry.sdk.trace', 'opentelemetry-sdk')  # imported here: optional packages
        exporter = require('opentelemetry.exporter.otlp.proto.http.trace_exporter',
                           'opentelemetry-exporter-otlp-proto-http')
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        if headers is not None and not (isinstance(headers, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
            raise PluginError('headers: expected a mapping of names to strings')
        self.service_name = service_name
        self.processor = BatchSpanProcessor(
            exporter.OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=timeout),
            schedule_delay_millis=schedule_delay * 1000)
        self.resource: Any = None
        self.previous: Any = None

    def on_start(self, container: Any) -> None:
        from opentelemetry.sdk.resources import Resource
        name = self.service_name or ','.join(getattr(container, 'interfaces', None) or ()) or 'fannode'
        self.resource = Resource.create({'service.name': name, 'service.instance.id': container.id,
                                         'service.version': getattr(container, 'version', '') or ''})
        self.previous = trace.sink  # where the spans went already (the log hub): still there
        trace.sink = self.sink

    def sink(self, record: dict[str, Any]) -> None:
        if self.previous is not None:
            self.previous(record)
        try:
            self.processor.on_end(self.span(record))
        except (ValueError, TypeError):  # a record this plugin cannot read: not sent
            pass

    def span(self, record: dict[str, Any]) -> Any:
        from opentelemetry import trace as api
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        flags = api.TraceFlags(api.TraceFlags.SAMPLED)
        trace_id = number(record['trace'], 32)
        context = api.SpanContext(trace_id, number(record['span'], 16), is_remote=False, trace_flags=flags)
        parent = (api.SpanContext(trace_id, number(record['parent'], 16), is_remote=True, trace_flags=flags)
                  if record.get('parent') else None)
        start = int(record['ts'] * 1e9)
        status = (api.Status(api.StatusCode.OK) if record.get('status', 'ok') == 'ok'
                  else api.Status(api.StatusCode.ERROR, str(record.get('status'))))
        attributes = {'fannode.type': record.get('type', ''), 'fannode.trace': record['trace']}
        for key, value in record.items():
            if key not in FIELDS and isinstance(value, (str, bool, int, float)):
                attributes['fannode.%s' % key] = value
        return ReadableSpan(
            name=str(record.get('name', '')), context=context, parent=parent, resource=self.resource,
            attributes=attributes, kind=getattr(api.SpanKind, KINDS.get(record.get('type', ''), 'INTERNAL')),
            status=status, start_time=start, end_time=start + int(float(record.get('duration_ms', 0)) * 1e6),
            instrumentation_scope=InstrumentationScope('fannode'))

    def on_stop(self, container: Any) -> None:
        if trace.sink == self.sink:
            trace.sink = self.previous
        self.processor.shutdown()  # sends what is queued
