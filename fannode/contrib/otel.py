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
slowed); what is queued is sent when the instance stops, for at most `shutdown_timeout`
seconds (2 by default: the SDK's own shutdown may wait 30 s for a collector that is away,
longer than the node lets an instance take to stop).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from fannode.core import trace
from fannode.core.plugins import Plugin, PluginError, require

# fannode's span type → OTLP span kind (opentelemetry.trace.SpanKind member names)
KINDS = {'rpc': 'SERVER', 'http': 'SERVER', 'event': 'CONSUMER'}
FIELDS = ('kind', 'ts', 'trace', 'span', 'parent', 'type', 'name', 'status', 'duration_ms')

log = logging.getLogger(__name__)


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
                 service_name: str | None = None, timeout: float = 10.0, schedule_delay: float = 1.0,
                 shutdown_timeout: float = 2.0):
        require('opentelemetry.sdk.trace', 'opentelemetry-sdk')  # imported here: optional packages
        exporter = require('opentelemetry.exporter.otlp.proto.http.trace_exporter',
                           'opentelemetry-exporter-otlp-proto-http')
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        if headers is not None and not (isinstance(headers, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
            raise PluginError('headers: expected a mapping of names to strings')
        if not isinstance(shutdown_timeout, (int, float)) or isinstance(shutdown_timeout, bool) \
                or not 0 <= shutdown_timeout <= 60:
            raise PluginError('shutdown_timeout: expected seconds from 0 to 60, got %r' % (shutdown_timeout,))
        self.service_name = service_name
        self.shutdown_timeout = float(shutdown_timeout)
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
        except Exception:  # on the request's path: a record this plugin cannot read is not sent, nothing raised
            log.debug('span not sent to OTLP: %r', record, exc_info=True)

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
            if key not in FIELDS and key not in trace.LINE_FIELDS and isinstance(value, (str, bool, int, float)):
                attributes['fannode.%s' % key] = value
        return ReadableSpan(
            name=str(record.get('name', '')), context=context, parent=parent, resource=self.resource,
            attributes=attributes, kind=getattr(api.SpanKind, KINDS.get(record.get('type', ''), 'INTERNAL')),
            status=status, start_time=start, end_time=start + int(float(record.get('duration_ms', 0)) * 1e6),
            instrumentation_scope=InstrumentationScope('fannode'))

    def on_stop(self, container: Any) -> None:
        if trace.sink == self.sink:
            trace.sink = self.previous
        # sends what is queued; not waited for past shutdown_timeout (the thread is a daemon)
        done = threading.Thread(target=self._shutdown, name='otlp-shutdown', daemon=True)
        done.start()
        done.join(self.shutdown_timeout)

    def _shutdown(self) -> None:
        try:
            self.processor.shutdown()
        except Exception:
            log.debug('OTLP shutdown failed', exc_info=True)
