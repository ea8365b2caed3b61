"""Two doors: one method of a WebInterface answers both HTTP and RPC.

    class Items(fannode.WebInterface):
        @route('/items/<int:id>', methods=['PATCH'])
        @fannode.rpc(raises=KeyError)
        def patch(self, id, name=None):
            ...

Over RPC it is a plain @rpc method. Over HTTP its keyword arguments come from the URL's
arguments, the query string and a JSON object body; its reply is sent as JSON. Errors
become JSON too: bad arguments 400 naming them, a `raises=` contract exception 4xx (404
for a LookupError, 403 for a PermissionError, an `http_status` attribute when the class
has one, else 400), anything else 500 as for any view.
"""
from __future__ import annotations

import inspect
import json
import logging
import math
from typing import Any, Callable, Iterable, Mapping, TypeVar

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from fannode.core import trace
from fannode.core.interface import argument_problem
from fannode.core.jsonable import to_json
from fannode.exceptions import UsageError

log = logging.getLogger(__name__)

F = TypeVar('F', bound=Callable[..., Any])

ROUTES = '_fannode_routes'  # on a function: its routes, as `inspect` shows them
MAX_QUERY_PARAMS = 100
BOOLEANS = {'true': True, '1': True, 'yes': True, 'false': False, '0': False, 'no': False}


class DoorRule(Rule):
    """A url_map rule to a two-door method, with the status its success answers with."""

    def __init__(self, string: str, status: int = 200, **kwargs: Any):
        super().__init__(string, **kwargs)
        self.status = status

    def get_empty_kwargs(self) -> Any:  # Rule.empty() copies a rule into a new Map
        return dict(super().get_empty_kwargs(), status=self.status)


def route(path: str, methods: Iterable[str] | None = None, status: int = 200) -> Callable[[F], F]:
    """Serve the method at `path` (a werkzeug rule: '/items/<int:id>') over HTTP as
    well, for `methods` (default GET): URL arguments, query parameters and the JSON body's
    keys become its keyword arguments; its reply becomes JSON with `status` (None is 204).
    Stack it for several paths or methods; with @fannode.rpc() the method is both."""
    verbs = sorted({m.upper() for m in methods}) if methods is not None else ['GET']
    if not path.startswith('/'):
        raise UsageError('route(%r): a path starts with /' % path)
    if not 100 <= status < 400:
        raise UsageError('route(%r, status=%r): a success status is 1xx to 3xx' % (path, status))

    def mark(func: F) -> F:
        routes = list(getattr(func, ROUTES, ()))
        routes.insert(0, {'path': path, 'methods': verbs, 'status': status})  # in the order they read
        setattr(func, ROUTES, routes)
        return func
    return mark


def routes_of(func: Any) -> list[dict[str, Any]]:
    return getattr(func, ROUTES, [])


def build_map(cls: type, declared: Map) -> Map:
    """The url_map of `cls`: the rules it declared, then one rule per route of its methods."""
    rules = [rule.empty() for rule in declared.iter_rules()]
    for name in dir(cls):
        func = getattr(cls, name, None)
        for r in routes_of(func) if callable(func) else ():
            rules.append(DoorRule(r['path'], status=r['status'], endpoint=name, methods=r['methods']))
    return Map(rules, **{k: getattr(declared, k) for k in ('strict_slashes', 'merge_slashes')})


def is_door(rule: Rule) -> bool:
    return isinstance(rule, DoorRule)


def shard_field(handler: Any) -> str | None:
    """The argument an @rpc(shard=...) method is routed by: over HTTP too, when in the URL."""
    return getattr(getattr(handler, '_fannode_rpc', None), 'shard', None)


class Refused(Exception):
    """The request does not make a call: answered with `status` and a one-line error."""

    def __init__(self, status: int, message: str, type_: str = 'BadArguments'):
        super().__init__(message)
        self.status, self.type = status, type_


def serve(owner: Any, handler: Callable[..., Any], request: Request, rule: Rule,
          url_args: Mapping[str, Any]) -> Response:
    """The HTTP door of `handler`: its call from `request`, its reply (or error) as JSON.
    Failures of its own downstream calls are left to the caller (WebInterface._respond)."""
    spec = getattr(handler, '_fannode_rpc', None)
    subject = '%s.%s' % (owner.name, getattr(spec, 'name', handler.__name__))
    try:
        kwargs = arguments(request, url_args, handler)
        problem = argument_problem(inspect.signature(handler), kwargs)
        if problem:
            raise Refused(400, '%s: %s' % (subject, problem))
        reply = handler(**kwargs)
    except Refused as e:
        return error(e.status, str(e), e.type)
    except HTTPException as e:  # raised on purpose: its status, in JSON like the rest
        return error(e.code or 500, e.description or e.name, type(e).__name__)
    except tuple(spec.raises if spec is not None else ()) as e:
        log.info('%s %s: %s: %s', request.method, request.path, type(e).__name__, message(e))
        return error(contract_status(e), message(e), type(e).__name__)
    if reply is None:
        return Response(status=204)
    return Response(to_json(reply), status=getattr(rule, 'status', 200), content_type='application/json')


def arguments(request: Request, url_args: Mapping[str, Any], func: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments of a call: the URL's, the query string's, the JSON body's. A
    name given twice is refused: which one should win is a guess."""
    kwargs = dict(url_args)
    query = request.args.to_dict(flat=False)
    if len(query) > MAX_QUERY_PARAMS:
        raise Refused(400, 'too many query parameters: %d (at most %d)' % (len(query), MAX_QUERY_PARAMS))
    params: Mapping[str, inspect.Parameter] = inspect.signature(func).parameters if query else {}
    for name, values in query.items():
        if len(values) > 1:
            raise Refused(400, "query parameter '%s' is given %d times" % (name[:64], len(values)))
        param = params.get(name)
        _add(kwargs, name, from_query(name, values[0], param.annotation) if param else values[0], 'the query')
    data = request.get_data()
    if data.strip():
        try:
            body = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise Refused(400, 'the body is not JSON: %s' % _first_line(e)) from None
        if not isinstance(body, dict):
            raise Refused(400, 'the body must be a JSON object of arguments, got %s' % _json_type(body))
        for name, value in body.items():
            _add(kwargs, name, value, 'the body')
    return kwargs


def from_query(name: str, text: str, annotation: Any) -> Any:
    """A query parameter is text: an int, float or bool one when the method's parameter is
    annotated so (`limit: int = 10`, `int | None`), else the text itself."""
    spelled = annotation if isinstance(annotation, str) else getattr(annotation, '__name__', str(annotation))
    spelled = spelled.strip('\'"').replace('Optional[', '').rstrip(']')
    kinds = {part.strip() for part in spelled.split('|')} - {'None'}
    kind = kinds.pop() if len(kinds) == 1 else ''
    try:
        if kind == 'int':
            return int(text)
        if kind == 'float' and math.isfinite(float(text)):  # no NaN: JSON has none
            return float(text)
        if kind == 'float':
            raise ValueError(text)
    except ValueError:
        raise Refused(400, "query parameter '%s': expected %s, got %r" % (
            name, 'an integer' if kind == 'int' else 'a number', text[:64])) from None
    if kind == 'bool':
        if text.lower() not in BOOLEANS:
            raise Refused(400, "query parameter '%s': expected true or false, got %r" % (name, text[:64]))
        return BOOLEANS[text.lower()]
    return text


def _add(kwargs: dict[str, Any], name: str, value: Any, where: str) -> None:
    if name in kwargs:
        raise Refused(400, "argument '%s' is given twice (in %s, and in the URL or query)" % (name[:64], where))
    kwargs[name] = value


def contract_status(exc: BaseException) -> int:
    status = getattr(exc, 'http_status', None)
    if isinstance(status, int) and 400 <= status < 600:
        return status
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, PermissionError):
        return 403
    return 400


def message(exc: BaseException) -> str:
    # KeyError('x') prints as "'x'": its one argument reads better.
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return str(exc.args[0])
    return str(exc)


def error(status: int, text: str, type_: str) -> Response:
    body = to_json({'error': text, 'type': type_, 'trace_id': trace.get_id()})
    return Response(body, status=status, content_type='application/json')


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _json_type(value: Any) -> str:
    names = {list: 'an array', str: 'a string', bool: 'a boolean', int: 'a number', float: 'a number'}
    return names.get(type(value), 'null')
