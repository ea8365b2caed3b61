"""Errors to Sentry: `pip install sentry-sdk` (or `fannode[sentry]`), then in a service
config:

    plugins:
      - class: fannode.contrib.sentry:SentryPlugin
        dsn: ${SENTRY_DSN}
        environment: production

Every unexpected exception of an RPC method, event handler or HTTP handler is sent
with the tags service, kind, name, trace_id and instance_id.
"""
from __future__ import annotations

from typing import Any

from fannode.core.plugins import Plugin, require


class SentryPlugin(Plugin):
    def __init__(self, dsn: str | None = None, environment: str | None = None, **options: Any):
        self.sdk = require('sentry_sdk', 'sentry-sdk')  # imported here: an optional package
        # Without the default integrations: the logging one would send each error a second
        # time, from the instance's own log line. `default_integrations: true` brings them back.
        options.setdefault('default_integrations', False)
        self.sdk.init(dsn=dsn, environment=environment, **options)

    def on_error(self, exc: BaseException, context: dict[str, Any]) -> None:
        tags = {k: context.get(k) or '-' for k in ('service', 'kind', 'name', 'trace_id', 'instance_id')}
        self.sdk.capture_exception(exc, tags=tags, contexts={'fannode': context})

    def on_stop(self, container: Any) -> None:
        self.sdk.flush(timeout=2.0)  # what is still queued, before the process exits
