"""The gateway's pure parts: the status of every error class, version ranges, the OpenAPI
parameters read from a signature."""
from __future__ import annotations

import json

import pytest

from fannode.exceptions import (
    BadArguments, BadReply, CircuitOpen, ConnectionLost, DeadlineExceeded, DiscoveryFailed, RemoteError, Timeout,
    Unavailable, UnknownMethod, UnknownService, UnknownVersion,
)
from fannode.core.interface import describe
from fannode.gateway import openapi
from fannode.gateway.errors import GatewayError, from_exception
from fannode.gateway.interface import parse_service


@pytest.mark.parametrize('error, status, kind', [
    (UnknownService('x'), 404, 'UnknownService'),
    (UnknownVersion('x'), 404, 'UnknownVersion'),
    (UnknownMethod('x'), 404, 'UnknownMethod'),
    (BadArguments('x'), 400, 'BadArguments'),
    (DeadlineExceeded('x'), 504, 'DeadlineExceeded'),
    (Timeout('x'), 504, 'Timeout'),
    (RemoteError.for_type('KeyError')('k', 'KeyError'), 502, 'KeyError'),
    (RemoteError.for_type('OutOfStock')('k', 'shop.errors.OutOfStock'), 502, 'OutOfStock'),
    (ConnectionLost('x'), 502, 'ConnectionLost'),
    (BadReply('x'), 502, 'BadReply'),
    (CircuitOpen('x'), 503, 'CircuitOpen'),
    (Unavailable('x'), 503, 'Unavailable'),
    (DiscoveryFailed('x'), 503, 'DiscoveryFailed'),
    (GatewayError(400, 'BadRequest', 'x'), 400, 'BadRequest'),
])
def test_each_error_class_has_its_status_and_type(error, status, kind):
    response = from_exception(error, 't1')
    body = json.loads(response.get_data())
    assert response.status_code == status
    assert body == {'error': {'type': kind, 'message': str(error)}, 'trace_id': 't1'}


@pytest.mark.parametrize('text, expected', [
    ('Greeting', ('Greeting', None)),
    ('Greeting@1', ('Greeting', '1')),
    ('Greeting@^1.2', ('Greeting', '^1.2')),
    ('Greeting@~1.2.3', ('Greeting', '~1.2.3')),
    ('Greeting@blue', ('Greeting', 'blue')),  # a label: matches that version exactly
])
def test_a_service_may_pin_a_version_range(text, expected):
    assert parse_service(text) == expected


@pytest.mark.parametrize('text, status, words', [
    ('Greeting@', 400, 'bad version range in "Greeting@"'),
    ('Greeting@^x.2', 400, 'bad version range in "Greeting@^x.2"'),
    ('Greeting@' + '1' * 200, 400, 'bad version range'),
    ('Gr eeting', 404, 'bad service name "Gr eeting"'),
    ('@1', 400, 'expected Service@version'),
])
def test_a_bad_name_or_range_is_refused_naming_it(text, status, words):
    with pytest.raises(GatewayError) as caught:
        parse_service(text)
    assert caught.value.status == status and words in str(caught.value)


def _one(name): ...
def _default(value=None): ...
def _annotated(service, name, greeting: str = 'a, b=c'): ...
def _stars(key, *args, limit=3, **rest): ...
def _none(): ...


@pytest.mark.parametrize('func, params, required', [
    (_one, ['name'], ['name']),
    (_default, ['value'], []),
    (_annotated, ['service', 'name', 'greeting'], ['service', 'name']),
    (_stars, ['key', 'limit'], ['key']),
    (_none, [], []),
])
def test_parameters_and_the_required_ones_come_from_the_signature(func, params, required):
    assert openapi.required_params(describe('m', func)) == (params, required)


def test_the_document_has_one_path_per_method_and_says_who_did_not_answer():
    doc = openapi.document({'Greeting': [
        {'name': 'greet', 'params': ['name'], 'signature': '(name)', 'doc': 'Greet.\n\nLonger.', 'builtin': False},
        {'name': 'ping', 'params': [], 'signature': '()', 'doc': '', 'builtin': True},
    ]}, {'Broken': 'DeadlineExceeded: no reply'})
    assert list(doc['paths']) == ['/rpc/Greeting/greet']
    post = doc['paths']['/rpc/Greeting/greet']['post']
    assert (post['summary'], post['description']) == ('Greet.', 'Greet.\n\nLonger.')
    assert doc['x-unreachable'] == {'Broken': 'DeadlineExceeded: no reply'}
