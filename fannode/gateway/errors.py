"""What a failed call becomes over HTTP: a status by the error's class, and a JSON body
naming its type (the remote type for a RemoteError) and message."""
from __future__ import annotations

import json

from werkzeug.wrappers import Response

from fannode.exceptions import (
    BadArguments, BadReply, BadRequest, CircuitOpen, ConnectionLost, DiscoveryFailed, Nack, RemoteError,
    RpcError, Timeout, Unavailable, UnknownMethod, UnknownService,
)

# Most specific first: UnknownVersion is an UnknownService, DeadlineExceeded a Timeout.
STATUS_BY_CLASS: tuple[tuple[type[BaseException], int], ...] = (
    (UnknownService, 404),
    (UnknownMethod, 404),
    (BadArguments, 400),
    (BadRequest, 400),
    (Timeout, 504),
    (CircuitOpen, 503),
    (Unavailable, 503),
    (DiscoveryFailed, 503),
    (RemoteError, 502),
    (ConnectionLost, 502),
    (BadReply, 502),
    (Nack, 503),
    (RpcError, 502),
)
MAX_MESSAGE = 4000  # characters of an error message in a response: a remote one may be long


class GatewayError(Exception):
    """A request the gateway refuses itself, before any call: a status, a type, a message."""

    def __init__(self, status: int, type: str, message: str):
        super().__init__(message)
        self.status = status
        self.type = type


def status_of(error: BaseException) -> int:
    for cls, status in STATUS_BY_CLASS:
        if isinstance(error, cls):
            return status
    return 500


def type_of(error: BaseException) -> str:
    """The type a client sees: the remote type's name for a RemoteError ('KeyError')."""
    if isinstance(error, RemoteError):
        return error.remote_type.rsplit('.', 1)[-1]
    if isinstance(error, GatewayError):
        return error.type
    return type(error).__name__


def error_response(status: int, type: str, message: str, trace_id: str) -> Response:
    body = {'error': {'type': type, 'message': message[:MAX_MESSAGE]}, 'trace_id': trace_id}
    return Response(json.dumps(body), status=status, content_type='application/json')


def from_exception(error: BaseException, trace_id: str) -> Response:
    status = error.status if isinstance(error, GatewayError) else status_of(error)
    return error_response(status, type_of(error), str(error), trace_id)
