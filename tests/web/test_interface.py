"""A WebInterface as a WSGI app, driven with werkzeug's test client (no server)."""
from __future__ import annotations

import json
import logging

import pytest
from werkzeug.routing import Map, Rule
from werkzeug.test import Client
from werkzeug.wrappers import Response

import fannode
from fannode.core.config import loads_config
from fannode.exceptions import ConfigError
from fannode.web.server import WebServer


class Shapes(fannode.WebInterface):
    url_map = Map([Rule('/<kind>', endpoint='shape', methods=['GET', 'POST']),
                   Rule('/ghost', endpoint='no_such_method')])

    def shape(self, request, kind):
        return {'text': 'hi', 'bytes': b'\x00\x01', 'json': {'a': [1]}, 'none': None,
                'response': Response('made', status=201), 'object': object(),
                'body': str(len(request.get_data()))}[kind]


@pytest.fixture
def client():
    iface = Shapes()
    iface.apply_config(loads_config('max_body: 10\n'))
    iface.serving = True
    c = Client(iface.wsgi)
    c.iface = iface
    return c


@pytest.mark.parametrize('kind, status, content_type, data', [
    ('text', 200, 'text/plain; charset=utf-8', b'hi'),
    ('bytes', 200, 'application/octet-stream', b'\x00\x01'),
    ('json', 200, 'application/json', b'{"a": [1]}'),
    ('none', 204, None, b''),
    ('response', 201, 'text/plain; charset=utf-8', b'made'),
])
def test_return_values_become_responses(client, kind, status, content_type, data):
    r = client.get('/' + kind)
    assert r.status_code == status and r.data == data
    if content_type:
        assert r.headers['Content-Type'] == content_type
    assert len(r.headers['X-Trace-Id']) == 32


def test_an_unsendable_return_value_is_a_500_naming_the_trace(client):
    r = client.get('/object')
    assert r.status_code == 500
    assert json.loads(r.data) == {'error': 'Internal Server Error', 'trace_id': r.headers['X-Trace-Id']}


def test_a_body_over_the_limit_is_refused(client):
    assert client.post('/body', data=b'x' * 10).data == b'10'
    assert client.post('/body', data=b'x' * 11).status_code == 413


def test_an_endpoint_without_a_method_is_a_500_logged_once_with_its_rule(client, caplog):
    for _ in range(3):
        r = client.get('/ghost')
        assert r.status_code == 500
        assert json.loads(r.data) == {'error': 'Internal Server Error', 'trace_id': r.headers['X-Trace-Id']}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "Shapes: url_map rule '/ghost' names endpoint 'no_such_method', but there is no such method; "
        "answering 500"]


def test_an_endpoint_without_a_method_is_found_before_serving():
    iface = Shapes(None, 'Shapes')
    iface.apply_config(loads_config('interfaces:\n  Shapes:\n    class: x:Shapes\n',
                                    'conf/web.yml').section('interfaces').section('Shapes'))
    with pytest.raises(ConfigError) as info:
        WebServer(iface, {})
    assert str(info.value) == ("conf/web.yml:3: interfaces.Shapes.class: url_map rule '/ghost' names "
                               "endpoint 'no_such_method', but Shapes has no such method")


def test_health_follows_the_serving_state(client):
    assert client.get('/_health').status_code == 200
    client.iface.serving = False
    assert (client.get('/_health').status_code, client.get('/_health').data) == (503, b'stopping')


def test_a_too_long_incoming_trace_id_is_replaced(client):
    r = client.get('/text', headers={'X-Trace-Id': 'x' * 500})
    assert len(r.headers['X-Trace-Id']) == 32
