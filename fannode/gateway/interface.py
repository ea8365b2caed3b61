"""The gateway: HTTP/JSON in, RPC calls and events out.

    POST /rpc/<Service>/<method>   JSON object body = keyword arguments → the reply as JSON
    POST /events/<type>            JSON object body → emitted, 202 {"id": ..., "trace_id": ...}
    GET  /services                 what `fannode discover --json` shows
    GET  /events/<pattern>         server-sent events, one `data: {json}` per matching event
    GET  /openapi.json             OpenAPI 3, from each service's `inspect`
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import gevent
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from fannode.core import trace
from fannode.core.config import Config
from fannode.core.events import Event, check_pattern, check_type
from fannode.core.jsonable import to_json
from fannode.core.versions import split_versioned
from fannode.exceptions import RpcError, UsageError
from fannode.gateway import openapi
from fannode.gateway.errors import GatewayError, error_response, from_exception
from fannode.gateway.stream import KEEPALIVE, Stream
from fannode.web.interface import WebInterface

NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_.\-]{0,127}')  # a service name as the gateway takes it
METHOD = re.compile(r'[A-Za-z][A-Za-z0-9_]{0,127}')    # no _private, no dunder
NOT_EXPOSED = frozenset({'change_loglevel'})  # an operator's built-in, not for HTTP clients
TIMEOUT_HEADER = 'X-Timeout'
MAX_TIMEOUT = 300.0        # seconds an X-Timeout may ask for
MAX_BODY = 1024 * 1024     # bytes of a JSON body (the server answers 413 past it)
MAX_STREAMS = 100          # SSE connections served at once
INSPECT_TIMEOUT = 2.0      # seconds each service has to describe itself for /openapi.json


class Gateway(WebInterface):
    """Config keys besides a WebInterface's: `timeout` (seconds, the calls' default: the
    client's), `max_streams` (100), `emit_timeout` (5: seconds the broker has to take an
    event), `keepalive` (15: seconds between comments on a quiet event stream)."""

    url_map = Map([
        Rule('/rpc/<service>/<method>', endpoint='rpc_call', methods=['POST']),
        Rule('/events/<path:type>', endpoint='emit_event', methods=['POST']),
        Rule('/events/<path:pattern>', endpoint='stream_events', methods=['GET']),
        Rule('/services', endpoint='services', methods=['GET']),
        Rule('/openapi.json', endpoint='openapi', methods=['GET']),
    ])

    def apply_config(self, config: Config) -> None:
        super().apply_config(config)
        if 'max_body' not in config:  # JSON arguments, not uploads: a lower default
            self.max_body = MAX_BODY
        self.call_timeout = config.require('timeout', (int, float), 0) or None
        self.max_streams = config.require('max_streams', int, MAX_STREAMS)
        self.emit_timeout = config.require('emit_timeout', (int, float), 5.0)
        self.keepalive = config.require('keepalive', (int, float), KEEPALIVE)
        if not self.keepalive > 0:
            raise config.error('keepalive', 'must be seconds above 0, got %s' % self.keepalive)
        self.streams = 0

    # RPC

    @property
    def cluster(self) -> Any:
        """The instance running the gateway (fannode.runtime.container): its registry and
        events as well as what the Container protocol promises."""
        assert self.container is not None, 'the gateway runs inside an instance'
        return self.container

    def rpc_call(self, request: Request, service: str, method: str) -> Response:
        try:
            name, version = parse_service(service)
            if not METHOD.fullmatch(method) or method in NOT_EXPOSED:
                raise GatewayError(404, 'UnknownMethod', "bad method name %s: letters, digits and _ "
                                   "(not starting with _), and not %s" % (json.dumps(method[:64]), ', '.join(NOT_EXPOSED)))
            kwargs = json_object(request, 'the body: keyword arguments of %s.%s' % (name, method), self.max_body)
            timeout = timeout_of(request) or self.call_timeout
            proxy = self._proxy(name, timeout, version)
            reply = getattr(proxy, method)(**kwargs)
        except (GatewayError, RpcError) as e:
            return from_exception(e, trace.get_id())
        return Response(to_json(reply), content_type='application/json')

    def _proxy(self, service: str, timeout: float | None, version: str | None) -> Any:
        if version is not None:
            return self.proxy(service, timeout, version=version)
        return self.proxy(service, timeout)

    # Events

    def emit_event(self, request: Request, type: str) -> Response:
        events = self.cluster.events
        try:
            check_type(type)
            body = json_object(request, 'the body of event %s' % type, self.max_body)
            if events is None:
                raise GatewayError(503, 'Unavailable', 'this gateway has no events backend')
            event = Event.new(type, body, trace.ensure_id(), self.name)
            events.emit(event)
            if not events.flush(self.emit_timeout):
                raise GatewayError(503, 'Unavailable', 'the event broker did not take event %s within %gs'
                                   % (type, self.emit_timeout))
        except UsageError as e:
            return error_response(400, 'BadRequest', str(e), trace.get_id())
        except GatewayError as e:
            return from_exception(e, trace.get_id())
        return Response(json.dumps({'id': event.id, 'type': type, 'trace_id': event.trace_id}), status=202,
                        content_type='application/json')

    def stream_events(self, request: Request, pattern: str) -> Response:
        try:
            check_pattern(pattern)
        except UsageError as e:
            return error_response(400, 'BadRequest', str(e), trace.get_id())
        if request.method == 'HEAD':  # no body will be read: no subscription either
            return Response(content_type='text/event-stream')
        events = self.cluster.events
        if events is None:
            return error_response(503, 'Unavailable', 'this gateway has no events backend', trace.get_id())
        if self.streams >= self.max_streams:
            return error_response(503, 'Unavailable', 'serving %d event streams already (max_streams)'
                                  % self.streams, trace.get_id())
        self.streams += 1

        def done() -> None:
            self.streams -= 1

        body = Stream(events, pattern, lambda: self.closing, done, self.keepalive)
        return Response(body, content_type='text/event-stream', direct_passthrough=True,
                        headers={'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no'})

    # What there is

    def services(self, request: Request) -> Response:
        found = self.cluster.registry.services()
        everything = request.args.get('all') in ('1', 'true', 'yes')
        return Response(to_json({name: [i.to_dict() for i in instances] for name, instances in found.items()
                                 if everything or not name.startswith('fannode.')}),
                        content_type='application/json')

    def openapi(self, request: Request) -> Response:
        names = [n for n in self.cluster.registry.services() if not n.startswith('fannode.') and n != self.name]
        asks = {n: gevent.spawn(self._inspect, n) for n in names}
        gevent.joinall(list(asks.values()))
        described, unreachable = {}, {}
        for name, ask in asks.items():
            if ask.successful() and isinstance(ask.value, list):
                described[name] = ask.value
            else:
                error = ask.exception if ask.exception is not None else 'no description'
                unreachable[name] = str(error)
        return Response(to_json(openapi.document(described, unreachable)), content_type='application/json')

    def _inspect(self, service: str) -> Any:
        return (self.proxy(service, INSPECT_TIMEOUT).inspect() or {}).get(service)


def parse_service(text: str) -> tuple[str, str | None]:
    """'Greeting' or 'Greeting@^1.2' → (name, version range or None), read as the CLI reads
    them (fannode.core.versions); 404 for a bad name, 400 for a bad range."""
    try:
        name, version = split_versioned(text)
    except UsageError as e:
        raise GatewayError(400, 'BadRequest', 'bad version range in %s: %s' % (json.dumps(text[:140]), e)) from None
    if not NAME.fullmatch(name):
        raise GatewayError(404, 'UnknownService', 'bad service name %s: letters, digits and _ . -, at most 128'
                           % json.dumps(name[:64]))
    return name, version


def json_object(request: Request, what: str, limit: int) -> dict[str, Any]:
    """The request's body as a JSON object (empty: {}); 400 naming `what` otherwise."""
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise GatewayError(400, 'BadRequest', '%s: larger than %d bytes (max_body)' % (what, limit)) from None
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise GatewayError(400, 'BadRequest', '%s: bad JSON: %s' % (what, e)) from None
    if not isinstance(value, dict):
        raise GatewayError(400, 'BadArguments', '%s: expected a JSON object, got %s'
                           % (what, type(value).__name__ if value is not None else 'null'))
    return value


def timeout_of(request: Request) -> float | None:
    """X-Timeout in seconds (a number above 0, at most MAX_TIMEOUT); None when not sent."""
    text = request.headers.get(TIMEOUT_HEADER)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_TIMEOUT:  # NaN too
        raise GatewayError(400, 'BadRequest', '%s: expected seconds above 0 and at most %g, got %s'
                           % (TIMEOUT_HEADER, MAX_TIMEOUT, json.dumps(text[:32])))
    return seconds
