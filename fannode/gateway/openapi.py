"""An OpenAPI 3 document from what the services say of themselves (`inspect`): one
POST path per RPC method, its parameters from the signature, its docstring as text."""
from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    'type': 'object',
    'properties': {
        'error': {'type': 'object', 'properties': {'type': {'type': 'string'}, 'message': {'type': 'string'}}},
        'trace_id': {'type': 'string'},
    },
}
ERROR_STATUSES = {'400': 'bad arguments or body', '404': 'unknown service, version or method',
                  '502': 'the method raised (error.type is the remote type)', '503': 'circuit open, unavailable',
                  '504': 'deadline exceeded'}


def required_params(method: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(keyword parameters, those without a default), read from the signature text in
    order: the part of it from one name to the next holds that name's default, if any."""
    names = [n for n in method.get('params', []) if isinstance(n, str)]
    text = str(method.get('signature', ''))
    spans, at = [], 0
    for name in names:
        found = text.find(name, at)
        spans.append(found)
        at = max(at, found + len(name)) if found >= 0 else at
    params, required = [], []
    for i, name in enumerate(names):
        start = spans[i]
        if start < 0:
            params.append(name)
            continue
        end = next((s for s in spans[i + 1:] if s >= 0), len(text))
        part = text[max(0, start - 2):end]
        if '*' in part[:3]:  # *args, **kwargs: no keyword of that name
            continue
        params.append(name)
        if '=' not in part:
            required.append(name)
    return params, required


def operation(service: str, method: dict[str, Any]) -> dict[str, Any]:
    params, required = required_params(method)
    doc = str(method.get('doc') or '')
    schema: dict[str, Any] = {'type': 'object', 'properties': {p: {} for p in params}}
    if required:
        schema['required'] = required
    responses: dict[str, Any] = {'200': {'description': 'the reply', 'content': {'application/json': {'schema': {}}}}}
    for status, what in ERROR_STATUSES.items():
        responses[status] = {'description': what, 'content': {'application/json': {'schema': ERROR_SCHEMA}}}
    return {
        'operationId': '%s.%s' % (service, method['name']),
        'summary': doc.splitlines()[0] if doc else '%s.%s%s' % (service, method['name'], method.get('signature', '')),
        'description': doc,
        'tags': [service],
        'parameters': [
            {'name': 'X-Timeout', 'in': 'header', 'required': False, 'schema': {'type': 'number'},
             'description': 'seconds: the deadline of the call'},
            {'name': 'X-Trace-Id', 'in': 'header', 'required': False, 'schema': {'type': 'string'}},
        ],
        'requestBody': {'required': False, 'content': {'application/json': {'schema': schema}}},
        'responses': responses,
    }


def document(described: dict[str, list[dict[str, Any]]], unreachable: dict[str, str]) -> dict[str, Any]:
    """`described`: service → the methods its inspect lists (built-ins left out here);
    `unreachable`: service → why it could not be asked (said in the document, not fatal)."""
    paths: dict[str, Any] = {}
    for service in sorted(described):
        for method in described[service]:
            if not isinstance(method, dict) or method.get('builtin') or not isinstance(method.get('name'), str):
                continue
            paths['/rpc/%s/%s' % (service, method['name'])] = {'post': operation(service, method)}
    doc: dict[str, Any] = {
        'openapi': '3.0.3',
        'info': {'title': 'fannode gateway', 'version': '1',
                 'description': 'RPC methods of the services in discovery, called with a JSON object '
                                'of keyword arguments.'},
        'paths': paths,
    }
    if unreachable:
        doc['x-unreachable'] = unreachable
    return doc
