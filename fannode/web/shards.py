"""URL shards: a view whose URL names a shard key is served by the instance of the
service that owns the key (rendezvous hashing over its ready instances, as the RPC client
picks owners, fannode.core.shards), whichever instance the request reached:

    class StoreWeb(fannode.WebInterface):
        url_map = Map([Rule('/store/<int:store>/item/<int:item>', endpoint='item')])

        @sharded('store')
        def item(self, request, store, item): ...

An instance that does not own the key forwards the request over RPC to the one that does
(`forward_http`, on every WebInterface) and answers with its response. Every answer of a
sharded view says who served it in `X-Shard-Instance`. A forwarded request is served
where it lands, even if the owner changed on the way: no request goes round in circles.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from fannode.core.shards import instances_by_rank

F = TypeVar('F', bound=Callable[..., Any])

SHARD_HEADER = 'X-Shard-Instance'
FORWARDED = 'fannode.forwarded'  # in the environ of a request another instance forwarded: no header can set it
FORWARD_TIMEOUT = 30.0
# Said by each hop about itself, not passed on.
HOP_BY_HOP = {'connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'content-length', 'host'}


def sharded(arg: str) -> Callable[[F], F]:
    """Route a view by its URL argument `arg`: the instance owning that key serves it."""
    def mark(view: F) -> F:
        view._fannode_shard = arg  # type: ignore[attr-defined]
        return view
    return mark


def shard_arg(view: Any) -> str | None:
    return getattr(view, '_fannode_shard', None)


def owner_of(container: Any, service: str, key: Any) -> Any:
    """The instance (InstanceInfo) of `service` owning `key` (a URL argument: a uuid or
    another converter's value counts by its text); None when none is ready."""
    if key is not None and not isinstance(key, (str, int, float, bool)):
        key = str(key)
    ranked = instances_by_rank(key, container.registry.lookup(service))
    return ranked[0] if ranked else None


def forward(container: Any, service: str, endpoint: str, request: Request) -> Response:
    """`request`, served by the instance at `endpoint`, as a Response here."""
    from fannode.zmqrpc.direct import call_on
    headers = [[k, v] for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
    reply = call_on(container.client.connection(endpoint), service + '.forward_http', {
        'method': request.method, 'path': request.path, 'query': request.query_string.decode('latin-1'),
        'headers': headers, 'body': request.get_data()}, FORWARD_TIMEOUT)
    return Response(reply['body'], status=reply['status'],
                    headers=[(k, v) for k, v in reply['headers'] if k.lower() not in HOP_BY_HOP])


def replay(respond: Callable[[Request], Response], method: str, path: str, query: str,
           headers: list, body: bytes) -> dict[str, Any]:
    """A forwarded request served here: its response as the RPC reply carries it."""
    builder = EnvironBuilder(path=path, method=method, query_string=query, data=body,
                             headers=[(str(k), str(v)) for k, v in headers])
    try:
        environ = builder.get_environ()
        environ[FORWARDED] = True
        response = respond(Request(environ))
    finally:
        builder.close()
    return {'status': response.status_code, 'headers': [[k, v] for k, v in response.headers.items()],
            'body': response.get_data()}
