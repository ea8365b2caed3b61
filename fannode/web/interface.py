"""HTTP services: a WebInterface maps URLs to its methods with a werkzeug `url_map`.

    class Web(fannode.WebInterface):
        url_map = Map([Rule('/greet', endpoint='greet')])

        def greet(self, request):
            return self.proxy('Greeting').greet(name=request.args['name'])

It is an Interface too: it may have @rpc methods and @event handlers, emit and proxy.
A method marked `@fannode.web.route(path)` is served at `path` too, with keyword arguments
and a JSON reply: with @rpc it answers both doors (fannode.web.doors).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, MapAdapter, RequestRedirect
from werkzeug.wrappers import Request, Response

from fannode.core import current, trace
from fannode.core.config import Config
from fannode.core.interface import Interface, rpc
from fannode.core.jsonable import to_json
from fannode.core.logsetup import CARRIED
from fannode.exceptions import ConnectionLost, Nack, RemoteError, Timeout
from fannode.web import doors, shards

log = logging.getLogger(__name__)
access_log = logging.getLogger('fannode.web.access')
CARRIED_EXTRA = {CARRIED: True}

MAX_BODY = 10 * 1024 * 1024  # max_body's default: bytes of a request body
CHUNKED_KEY = 'fannode.chunked_body'  # in the environ: a chunked body, bounded by fannode.web.server
TRACE_HEADER = 'X-Trace-Id'

# What a failed downstream call becomes when the handler does not catch it.
RPC_STATUS = ((RemoteError, 502), (Timeout, 504), (ConnectionLost, 502), (Nack, 503))


def to_response(value: Any) -> Response:
    """What a handler returned, as a Response: str is text, bytes are bytes, a mapping or
    list is JSON, None is 204."""
    if isinstance(value, Response):
        return value
    if value is None:
        return Response(status=204)
    if isinstance(value, str):
        return Response(value, content_type='text/plain; charset=utf-8')
    if isinstance(value, (bytes, bytearray)):
        return Response(bytes(value), content_type='application/octet-stream')
    if isinstance(value, (dict, list)):
        return Response(to_json(value), content_type='application/json')
    raise TypeError('a web handler returned %s; return a Response, str, bytes, dict, list or None'
                    % type(value).__name__)


class RoutedRequest(Request):
    """A request that knows the url_map rule it matched: spans and metrics are named by
    the rule ('GET /greet/<name>'), not by every path."""

    route = '(no route)'


class WebInterface(Interface):
    """An Interface served over HTTP. Config keys (all optional): `port` (4080), `host`
    (0.0.0.0), `socket` (the name of a listening socket handed over by the node),
    `health` (path answering 200 while serving, 503 while stopping or while a hard
    dependency is missing; default /_health),
    `max_body` (bytes; default 10 MiB), `access_log` (true), and the connection limits
    `header_timeout`, `idle_timeout`, `max_connections` (fannode.web.server)."""

    url_map: Map = Map([])
    transports = ('rpc', 'http')
    closing = False  # set by the server when it stops
    _declared_map: Map = url_map  # the url_map as written, without the @route rules

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Adds a rule to url_map for each @route of a method (fannode.web.doors)."""
        super().__init_subclass__(**kwargs)
        cls._declared_map = cls.__dict__.get('url_map', cls._declared_map)
        if any(doors.routes_of(getattr(cls, name, None)) for name in dir(cls)):
            cls.url_map = doors.build_map(cls, cls._declared_map)

    def apply_config(self, config: Config) -> None:
        super().apply_config(config)
        self.web_config = config
        self.health_path = config.require('health', str, '/_health')
        self.max_body = config.require('max_body', int, MAX_BODY)
        if self.max_body < 0:
            raise config.error('max_body', 'must be a number of bytes, got %d' % self.max_body)
        self.log_access = config.require('access_log', bool, True)
        self.serving = False
        self.missing: set[str] = set()  # endpoints found missing while serving, logged once each

    def check_routes(self) -> None:
        """A ConfigError (one line, at the interface's `class`) for the first rule of the
        url_map whose endpoint names no method here: a bug better found at start."""
        for rule in self.url_map.iter_rules():
            if isinstance(rule.endpoint, str) and not callable(getattr(self, rule.endpoint, None)):
                raise self.web_config.error('class', "url_map rule '%s' names endpoint '%s', but %s has "
                                            "no such method" % (rule.rule, rule.endpoint, type(self).__name__))

    def wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """The WSGI application: one call per HTTP request, in its own greenlet."""
        incoming = environ.get('HTTP_X_TRACE_ID', '')
        parent = environ.get('HTTP_X_SPAN_ID', '')  # the caller's span, when it traces too
        span = trace.begin(incoming if 0 < len(incoming) <= 128 else '', parent[:32])
        trace_id = span.trace
        if self.container is not None:
            current.client.set(self.container.client)
        request = RoutedRequest(environ)
        # A chunked body our server bounds itself: werkzeug would cut it short at the limit
        if CHUNKED_KEY not in environ:
            request.max_content_length = self.max_body
        response = self._respond(request, trace_id)
        response.headers[TRACE_HEADER] = trace_id
        if self.closing:  # the server stops: this connection closes after the answer
            response.headers['Connection'] = 'close'
        status = response.status_code
        name = '%s %s' % (request.method, request.route)
        seconds = span.elapsed()
        line = ''
        if self.log_access and access_log.isEnabledFor(logging.INFO):
            line = '%s %s %d %.1fms' % (request.method, request.full_path.rstrip('?'), status, seconds * 1000)
        # Health checks come every few seconds from load balancers: not worth a span each.
        report = request.route != self.health_path
        # One record per request where spans go (the log hub, the node): the span carries its line
        carried = bool(line) and report and trace.sink is not None
        fields = {'level': 'INFO', 'logger': access_log.name, 'msg': line} if carried else {}
        span.end('http', name, 'error' if status >= 500 else 'ok', report=report, seconds=seconds,
                 code=status, **fields)
        if self.container is not None:
            self.container.metrics.record(name, seconds, status >= 500, 'http')
        if line:
            access_log.info('%s', line, extra=CARRIED_EXTRA if carried else None)
        plugged = getattr(self.container, 'plugins', None)  # None outside an instance
        if plugged:
            plugged.call('on_http_request', request, response, seconds)
        return response(environ, start_response)

    def _respond(self, request: RoutedRequest, trace_id: str) -> Response:
        if request.path == self.health_path:
            request.route = self.health_path
            missing = self._missing()
            if self.serving and missing:  # a load balancer sends this instance nothing meanwhile
                body = to_json({'status': 'not ready', 'missing': missing})
                return Response(body, status=503, content_type='application/json')
            return Response('ok' if self.serving else 'stopping', status=200 if self.serving else 503,
                            content_type='text/plain; charset=utf-8')
        try:
            rule, args = self._match(request)
            request.route, endpoint = rule.rule, rule.endpoint
            handler = getattr(self, endpoint, None) if isinstance(endpoint, str) else endpoint
            if handler is None:  # the server's bug, not the client's: checked at start when served
                if endpoint not in self.missing:
                    self.missing.add(endpoint)
                    log.error("%s: url_map rule '%s' names endpoint '%s', but there is no such "
                              "method; answering 500", self.name, rule.rule, endpoint)
                return self._error(500, 'Internal Server Error', trace_id)
            if doors.is_door(rule):  # a method with two doors: kwargs in, JSON out
                field = doors.shard_field(handler)
                serve = lambda: doors.serve(self, handler, request, rule, args)  # noqa: E731
            else:
                field = shards.shard_arg(handler)
                serve = lambda: to_response(handler(request, **args))  # noqa: E731
            if field is not None and field in args:
                return self._sharded(request, args[field], serve)
            return serve()
        except HTTPException as e:
            return e.get_response(request.environ)
        except Exception as e:
            for cls, status in RPC_STATUS:
                if isinstance(e, cls):
                    log.warning('%s %s: %s', request.method, request.path, e)
                    return self._error(status, '%s' % e, trace_id)
            log.exception('%s %s failed', request.method, request.path)
            plugged = getattr(self.container, 'plugins', None)
            if plugged:
                plugged.error(e, 'http', '%s %s' % (request.method, request.route), self.name,
                              method=request.method, path=request.path)
            return self._error(500, 'Internal Server Error', trace_id)

    _adapter: tuple[Map, MapAdapter] | None = None

    def _match(self, request: RoutedRequest) -> Any:
        """The url_map's rule for `request` and its arguments. Matching needs only the path
        and the method: one adapter serves every request (binding one per request, with the
        host worked out and IDNA-encoded, cost a tenth of a hello request). A redirect, or a
        map matching hosts, names the host: bound to the request then."""
        url_map = self.url_map
        if url_map.host_matching:
            return url_map.bind_to_environ(request.environ).match(return_rule=True)
        if self._adapter is None or self._adapter[0] is not url_map:
            self._adapter = (url_map, url_map.bind('localhost'))
        try:
            return self._adapter[1].match(request.path, request.method, return_rule=True)
        except RequestRedirect:
            return url_map.bind_to_environ(request.environ).match(return_rule=True)

    def _sharded(self, request: RoutedRequest, key: Any, serve: Callable[[], Response]) -> Response:
        """Served here when this instance owns `key` (or the request was forwarded, or
        there is no cluster to ask); else by the owner, over RPC (fannode.web.shards)."""
        container = self.container
        here = getattr(container, 'id', None)
        owner = None
        if here is not None and not request.environ.get(shards.FORWARDED):
            owner = shards.owner_of(container, self.name, key)
        if owner is None or owner.id == here:
            response = serve()
        else:
            response = shards.forward(container, self.name, owner.endpoint, request)
        if here is not None:
            response.headers.setdefault(shards.SHARD_HEADER, owner.id if owner is not None else here)
        return response

    @rpc()
    def forward_http(self, method: str, path: str, query: str, headers: list, body: bytes) -> dict[str, Any]:
        """A request for a URL shard this instance owns, forwarded by another instance."""
        return shards.replay(lambda request: self._respond(RoutedRequest(request.environ), trace.get_id()),
                             method, path, query, headers, body)

    def _missing(self) -> list[str]:
        """The hard dependencies with no ready instance now (fannode.runtime.dependencies);
        none outside an instance that follows them."""
        readiness = getattr(self.container, 'readiness', None)
        return readiness.missing_hard() if readiness is not None else []

    def _error(self, status: int, message: str, trace_id: str) -> Response:
        body = json.dumps({'error': message, 'trace_id': trace_id})
        return Response(body, status=status, content_type='application/json')
