"""Two-door methods (fannode.web.route + @rpc): one method answers HTTP and RPC. The
HTTP door through werkzeug's test client, the RPC door through fannode.testing."""
from __future__ import annotations

import json

import pytest
from werkzeug.exceptions import Forbidden
from werkzeug.routing import Map, Rule

import fannode
from fannode.exceptions import BadArguments, RemoteError, UsageError
from fannode.testing import ServiceUnderTest
from fannode.web import route

from items import Items  # tests/services/items.py


@pytest.fixture
def items():
    service = ServiceUnderTest(Items)
    service.http = service.web()
    yield service
    service.stop()


def body(response):
    return json.loads(response.data)


def test_one_method_answers_both_doors(items):
    made = items.http.post('/items', json={'name': 'pen', 'price': 2})
    assert made.status_code == 201 and made.headers['Content-Type'] == 'application/json'
    assert body(made) == {'id': 1, 'name': 'pen', 'price': 2}
    assert items.rpc.create(name='ink') == {'id': 2, 'name': 'ink', 'price': 0}
    # each door sees what the other did: one store, one body of code
    assert body(items.http.get('/items/2')) == {'id': 2, 'name': 'ink', 'price': 0}
    assert items.rpc.get(id=1) == {'id': 1, 'name': 'pen', 'price': 2}
    assert body(items.http.patch('/items/1', json={'price': 3}))['price'] == 3
    assert items.rpc.patch(id=2, name='blue ink')['name'] == 'blue ink'
    assert body(items.http.get('/items?name=pen')) == [{'id': 1, 'name': 'pen', 'price': 3}]
    assert [i['id'] for i in items.rpc.list()] == [1, 2]
    deleted = items.http.delete('/items/1')
    assert deleted.status_code == 204 and deleted.data == b''
    assert items.rpc.delete(id=2) is None
    assert body(items.http.get('/items')) == [] == items.rpc.list()


def test_a_plain_view_lives_beside_the_doors(items):
    assert items.http.get('/hello').data == b'plain view'


def test_a_body_without_a_content_type_is_read_as_json(items):
    # curl -d sends application/x-www-form-urlencoded unless told otherwise
    made = items.http.post('/items', data='{"name": "cup"}', content_type='application/x-www-form-urlencoded')
    assert made.status_code == 201 and body(made)['name'] == 'cup'


@pytest.mark.parametrize('method, path, data, status, error', [
    ('POST', '/items', '{}', 400, "Items.create: missing argument 'name'"),
    ('POST', '/items', '{"name": "a", "colour": 1}', 400, "Items.create: unexpected argument 'colour'"),
    ('GET', '/items?nme=x', None, 400, "Items.list: unexpected argument 'nme'"),
    ('GET', '/items?name=a&name=b', None, 400, "query parameter 'name' is given 2 times"),
    ('PATCH', '/items/1', '{"id": 2}', 400, "argument 'id' is given twice (in the body, and in the URL or query)"),
    ('POST', '/items', '{"name": ', 400, 'the body is not JSON: Expecting value: line 1 column 10 (char 9)'),
    ('POST', '/items', '["pen"]', 400, 'the body must be a JSON object of arguments, got an array'),
    pytest.param('POST', '/items', '[' * 100000, 400, 'the body is not JSON: maximum recursion depth exceeded',
                 id='deeply-nested'),
])
def test_bad_arguments_are_400_naming_them(items, method, path, data, status, error):
    r = items.http.open(path, method=method, data=data)
    assert r.status_code == status
    got = body(r)
    assert got['error'].startswith(error) and got['type'] == 'BadArguments'
    assert got['trace_id'] == r.headers['X-Trace-Id']


def test_the_rpc_door_refuses_the_same_arguments(items):
    with pytest.raises(BadArguments, match="missing argument 'name'"):
        items.rpc.create()


def test_contract_exceptions_are_4xx_over_http_and_remote_errors_over_rpc(items):
    missing = items.http.get('/items/7')
    assert missing.status_code == 404
    assert body(missing) == {'error': 'no item 7', 'type': 'NoSuchItem', 'trace_id': missing.headers['X-Trace-Id']}
    assert items.http.delete('/items/7').status_code == 404
    with pytest.raises(RemoteError.NoSuchItem, match='no item 7'):
        items.rpc.get(id=7)
    items.rpc.create(name='pen')
    twice = items.http.post('/items', json={'name': 'pen'})
    assert twice.status_code == 409 and body(twice)['type'] == 'Conflict'


def test_an_unknown_url_or_method_is_werkzeugs_answer(items):
    assert items.http.get('/items/x').status_code == 404
    assert items.http.put('/items/1').status_code == 405


class Odd(fannode.WebInterface):
    url_map = Map([Rule('/plain/<int:n>', endpoint='plain')])

    def plain(self, request, n):
        return {'n': n}

    @route('/half/<int(signed=True):n>')
    @route('/half', methods=['POST'])
    @fannode.rpc()
    def half(self, n):
        if n < 0:
            raise Forbidden('no negative numbers')
        return n / 2 if n % 2 else 'even'

    @fannode.rpc(raises=ValueError)
    @route('/fail')
    def fail(self):
        raise ValueError('not today')

    @route('/page')
    @fannode.rpc()
    def page(self, limit: int = 10, ratio: float | None = None, full: bool = False, tag=None):
        return {'limit': limit, 'ratio': ratio, 'full': full, 'tag': tag}

    @route('/crash')
    def crash(self):  # HTTP only: a route without @rpc is a JSON view with keyword arguments
        raise RuntimeError('boom')


@pytest.fixture
def odd():
    service = ServiceUnderTest(Odd)
    service.http = service.web()
    yield service
    service.stop()


def test_routes_stack_and_keep_the_declared_url_map(odd):
    assert body(odd.http.get('/plain/4')) == {'n': 4}
    assert body(odd.http.get('/half/3')) == 1.5
    assert body(odd.http.get('/half/4')) == 'even'   # a str reply is JSON too
    assert body(odd.http.post('/half', json={'n': 5})) == 2.5
    assert odd.rpc.half(n=5) == 2.5


def test_an_http_exception_raised_on_purpose_keeps_its_status_in_json(odd):
    r = odd.http.get('/half/-1')
    assert r.status_code == 403 and body(r)['error'] == 'no negative numbers'


def test_a_contract_exception_without_a_lookup_meaning_is_400(odd):
    r = odd.http.get('/fail')
    assert r.status_code == 400 and body(r)['error'] == 'not today' and body(r)['type'] == 'ValueError'


def test_any_other_exception_is_a_500_naming_the_trace(odd):
    r = odd.http.get('/crash')
    assert r.status_code == 500
    assert body(r) == {'error': 'Internal Server Error', 'trace_id': r.headers['X-Trace-Id']}


def test_a_route_only_method_is_not_on_the_rpc_door(odd):
    assert 'crash' not in [m['name'] for m in odd.rpc.inspect()['Odd']]


def test_inspect_shows_the_http_door(items):
    methods = {m['name']: m for m in items.rpc.inspect()['Items']}
    assert methods['patch']['signature'] == '(id, name=None, price=None)'
    assert methods['patch']['http'] == [{'path': '/items/<int:id>', 'methods': ['PATCH'], 'status': 200}]
    assert methods['create']['http'] == [{'path': '/items', 'methods': ['POST'], 'status': 201}]
    assert methods['patch']['doc'] == "Change an item's name or price."
    assert 'http' not in methods['ping']


@pytest.mark.parametrize('args, error', [
    (('items',), "route('items'): a path starts with /"),
    (('/x',), "route('/x', status=404): a success status is 1xx to 3xx"),
])
def test_a_bad_route_is_a_one_line_usage_error(args, error):
    with pytest.raises(UsageError) as e:
        route(*args, **({'status': 404} if args == ('/x',) else {}))
    assert str(e.value) == error


def test_fannode_web_route_is_reachable_from_a_bare_import():
    assert fannode.web.route is route


def test_query_parameters_follow_int_float_and_bool_annotations(odd):
    assert body(odd.http.get('/page')) == {'limit': 10, 'ratio': None, 'full': False, 'tag': None}
    assert body(odd.http.get('/page?limit=5&ratio=0.5&full=true&tag=7')) == {
        'limit': 5, 'ratio': 0.5, 'full': True, 'tag': '7'}  # no annotation: the text as is


@pytest.mark.parametrize('query, error', [
    ('limit=ten', "query parameter 'limit': expected an integer, got 'ten'"),
    ('ratio=nan', "query parameter 'ratio': expected a number, got 'nan'"),
    ('full=maybe', "query parameter 'full': expected true or false, got 'maybe'"),
])
def test_a_query_parameter_of_the_wrong_type_is_400_naming_it(odd, query, error):
    r = odd.http.get('/page?' + query)
    assert r.status_code == 400 and body(r)['error'] == error


def test_a_route_on_an_interface_without_an_http_door_stops_it_at_start_in_one_line():
    import fannode
    from fannode.core.config import Config
    from fannode.exceptions import ConfigError
    from fannode.runtime.container import ServiceContainer
    from fannode.web import route

    class Plain(fannode.Interface):
        @route('/x', methods=['GET'])
        @fannode.rpc()
        def x(self):
            return 1

    with pytest.raises(ConfigError, match="interfaces.Plain.class: Plain.x has @route, but Plain is not a "
                                          "WebInterface: nothing serves its HTTP door"):
        ServiceContainer(Config({'interfaces': {'Plain': {'class': Plain}}}, 'svc.yml'), 'local://route-check')
