"""`fannode gateway` end to end: curl against a real hub, Greeting, Listen and the gateway,
each its own process. What a client in any language sees: statuses, JSON bodies, headers,
server-sent events."""
from __future__ import annotations

import json
import subprocess
import tempfile

import pytest

from conftest import free_port, output, wait_until

pytestmark = pytest.mark.e2e


def curl(url: str, body: str | bytes | None = None, headers: dict | None = None,
         method: str | None = None, timeout: float = 20) -> tuple[int, dict, str]:
    """(status, headers with lower-case names, body) of one request made by curl."""
    with tempfile.NamedTemporaryFile('r') as head:
        args = ['curl', '-sS', '-D', head.name, '--max-time', str(timeout)]
        if method:
            args += ['-X', method]
        if body is not None:
            args += ['--data-binary', '@-', '-H', 'Content-Type: application/json']
        for k, v in (headers or {}).items():
            args += ['-H', '%s: %s' % (k, v)]
        data = body.encode() if isinstance(body, str) else body
        result = subprocess.run(args + [url], input=data, capture_output=True, timeout=timeout + 5)
        assert result.returncode == 0, result.stderr
        # the last response's head: a '100 Continue' may come first
        lines = head.read().strip().replace('\r\n', '\n').split('\n\n')[-1].splitlines()
    status = int(lines[0].split()[1])
    found = {}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        found[name.strip().lower()] = value.strip()
    return status, found, result.stdout.decode()


@pytest.fixture
def gateway(cluster):
    cluster.start_hub()
    cluster.greeting = cluster.start_instance('demo.yml')
    cluster.listen = cluster.start_instance('listen.yml')
    port = free_port()
    cluster.gw = cluster.spawn('gateway', '--port', str(port), '--keepalive', '0.2', '--max-streams', '2',
                               name='gateway')
    wait_until(lambda: 'serving Gateway at' in output(cluster.gw) or cluster.gw.poll() is not None,
               message='the gateway to serve')
    assert cluster.gw.poll() is None, output(cluster.gw)
    cluster.base = 'http://127.0.0.1:%d' % port
    return cluster


def error_of(body: str) -> tuple[str, str]:
    data = json.loads(body)
    assert set(data) == {'error', 'trace_id'} and data['trace_id']
    return data['error']['type'], data['error']['message']


def test_a_call_returns_the_reply_and_its_event_reaches_listen(gateway):
    status, headers, body = curl(gateway.base + '/rpc/Greeting/greet', '{"name": "Joe"}')
    assert (status, json.loads(body)) == (200, 'Hi, Joe!')
    assert headers['content-type'] == 'application/json'
    trace_id = headers['x-trace-id']
    wait_until(lambda: 'Somebody greeted Joe [%s]' % trace_id in output(gateway.listen),
               message='Listen to print the greeting with the trace id of the request')
    # an empty body is no arguments
    status, _, body = curl(gateway.base + '/rpc/Greeting/echo', '')
    assert (status, body) == (200, 'null')


def test_the_trace_id_goes_in_and_comes_out(gateway):
    status, headers, body = curl(gateway.base + '/rpc/Greeting/trace_id', '{}', {'X-Trace-Id': 'from-curl-1'})
    assert (status, json.loads(body), headers['x-trace-id']) == (200, 'from-curl-1', 'from-curl-1')


def test_an_event_posted_is_emitted_and_listen_prints_it(gateway):
    status, headers, body = curl(gateway.base + '/events/greeted', '{"name": "Ann"}', {'X-Trace-Id': 'ev-trace'})
    reply = json.loads(body)
    assert status == 202 and reply['type'] == 'greeted' and len(reply['id']) == 32
    assert reply['trace_id'] == headers['x-trace-id'] == 'ev-trace'
    wait_until(lambda: 'Somebody greeted Ann [ev-trace]' in output(gateway.listen), message='Listen to print it')


def test_services_lists_what_discover_shows(gateway):
    status, _, body = curl(gateway.base + '/services')
    assert status == 200
    listed = json.loads(body)
    discovered = json.loads(gateway.run('discover', '--json').stdout)
    assert sorted(listed) == sorted(discovered) == ['Gateway', 'Greeting', 'Listen']
    assert [i['id'] for i in listed['Greeting']] == [i['id'] for i in discovered['Greeting']]


@pytest.mark.parametrize('path, body, headers, status, kind, text', [
    ('/rpc/Nope/greet', '{}', {}, 404, 'UnknownService', "no instance of service 'Nope'"),
    ('/rpc/Greeting/nope', '{}', {}, 404, 'UnknownMethod', "nope"),
    ('/rpc/Greeting/_mark', '{}', {}, 404, 'UnknownMethod', 'bad method name "_mark"'),
    ('/rpc/Greeting@^7/greet', '{"name": "x"}', {}, 404, 'UnknownVersion', '^7'),
    ('/rpc/Greeting@^x!/greet', '{}', {}, 400, 'BadRequest', 'bad version range in "Greeting@^x!"'),
    ('/rpc/Greeting/greet', '{"nam": 1}', {}, 400, 'BadArguments', "unexpected argument 'nam'"),
    ('/rpc/Greeting/greet', '{"name": ', {}, 400, 'BadRequest', 'bad JSON'),
    ('/rpc/Greeting/greet', '["Joe"]', {}, 400, 'BadArguments', 'expected a JSON object, got list'),
    ('/rpc/Greeting/slow', '{"seconds": 5}', {'X-Timeout': '0.3'}, 504, 'DeadlineExceeded', 'Greeting.slow'),
    ('/rpc/Greeting/slow', '{"seconds": 0}', {'X-Timeout': 'soon'}, 400, 'BadRequest', 'X-Timeout'),
    ('/rpc/Greeting/lookup', '{"key": "k1"}', {}, 502, 'KeyError', "'k1'"),
    ('/rpc/Greeting/fail', '{}', {}, 502, 'ValueError', 'boom'),
    ('/events/bad..type', '{}', {}, 400, 'BadRequest', "bad event type 'bad..type'"),
    ('/events/greeted', '"Joe"', {}, 400, 'BadArguments', 'expected a JSON object, got str'),
])
def test_every_error_class_maps_to_its_status(gateway, path, body, headers, status, kind, text):
    got, got_headers, answer = curl(gateway.base + path, body, headers)
    assert got == status, answer
    assert got_headers['content-type'] == 'application/json'
    assert error_of(answer)[0] == kind and text in error_of(answer)[1], answer
    assert json.loads(answer)['trace_id'] == got_headers['x-trace-id']


def test_a_body_over_the_limit_is_refused_before_any_call(gateway):
    status, _, _ = curl(gateway.base + '/rpc/Greeting/echo', '{"value": "%s"}' % ('x' * 2_000_000))
    assert status == 413
    # chunked, no length said: read up to the limit, then refused as a bad body
    status, _, body = curl(gateway.base + '/rpc/Greeting/greet', '{"name": "%s"}' % ('x' * 2_000_000),
                           {'Transfer-Encoding': 'chunked'})
    assert status == 400, body
    assert error_of(body) == ('BadRequest', 'the body: keyword arguments of Greeting.greet: larger than '
                              '1048576 bytes (max_body)')
    assert 'Saying hi' not in output(gateway.greeting)


def test_repeated_timeouts_open_the_circuit_and_then_503(gateway):
    for _ in range(5):  # the breaker's default: 5 consecutive failures
        status, _, _ = curl(gateway.base + '/rpc/Greeting/slow', '{"seconds": 2}', {'X-Timeout': '0.2'})
        assert status == 504
    status, _, body = curl(gateway.base + '/rpc/Greeting/greet', '{"name": "x"}')
    assert status == 503 and error_of(body)[0] == 'CircuitOpen', body


def test_events_stream_as_server_sent_events_while_fannode_emit_fires(gateway):
    sink = gateway.tmp_path / 'sse.out'
    with open(sink, 'wb') as out:
        reader = subprocess.Popen(['curl', '-sS', '-N', '--max-time', '30', gateway.base + '/events/greeted'],
                                  stdout=out)
    try:
        wait_until(lambda: ': subscribed to "greeted"' in sink.read_text(), message='the stream to start')
        emitted = gateway.run('emit', 'greeted', '{"name": "Sse"}')
        assert emitted.returncode == 0, emitted.stderr
        wait_until(lambda: '"Sse"' in sink.read_text(), message='the event on the stream')
        wait_until(lambda: ': keep-alive' in sink.read_text(), message='a keep-alive comment')
    finally:
        reader.kill()
        reader.wait()
    frame = next(block for block in sink.read_text().split('\n\n') if '"Sse"' in block)
    lines = dict(line.split(': ', 1) for line in frame.splitlines())
    data = json.loads(lines['data'])
    assert (lines['event'], data['type'], data['body']) == ('greeted', 'greeted', {'name': 'Sse'})
    assert lines['id'] == data['headers']['id']


def test_streams_are_bounded_and_a_client_that_leaves_frees_its_place(gateway):
    url = gateway.base + '/events/count.*'
    readers = [subprocess.Popen(['curl', '-sS', '-N', '--max-time', '30', url], stdout=subprocess.PIPE)
               for _ in range(2)]
    try:
        for reader in readers:  # both subscribed: the first bytes came
            assert reader.stdout.read(14) == b': subscribed t'
        status, _, body = curl(url, method='GET')
        assert status == 503 and 'max_streams' in error_of(body)[1]
        readers[0].kill()
        readers[0].wait()
        # the gateway finds it gone at its next keep-alive, unsubscribes and lets another in
        wait_until(lambda: _opens(url), message='a place to free up')
    finally:
        for reader in readers:
            reader.kill()
            reader.wait()
            reader.stdout.close()
    assert 'Traceback' not in output(gateway.gw)


def test_a_stopping_gateway_ends_its_streams_and_exits_cleanly(gateway):
    import signal
    reader = subprocess.Popen(['curl', '-sS', '-N', '--max-time', '30', gateway.base + '/events/greeted'],
                              stdout=subprocess.PIPE)
    try:
        assert reader.stdout.read(14) == b': subscribed t'
        status, _, _ = curl(gateway.base + '/events/greeted', method='HEAD')  # no subscription, no leak
        assert status == 200
        gateway.gw.send_signal(signal.SIGTERM)
        assert gateway.gw.wait(10) == 0
        assert reader.wait(10) is not None  # the stream ended with the gateway
    finally:
        reader.kill()
        reader.wait()
        reader.stdout.close()
    assert 'Traceback' not in output(gateway.gw)


def _opens(url: str) -> bool:
    """Whether a new stream is taken (its first comment arrives) rather than refused."""
    result = subprocess.run(['curl', '-sS', '-N', '--max-time', '1', url], capture_output=True)
    return result.stdout.startswith(b': subscribed')


def test_openapi_lists_each_method_with_its_parameters_and_doc(gateway):
    status, _, body = curl(gateway.base + '/openapi.json')
    assert status == 200
    doc = json.loads(body)
    assert doc['openapi'].startswith('3.')
    greet = doc['paths']['/rpc/Greeting/greet']['post']
    assert greet['operationId'] == 'Greeting.greet'
    assert greet['description'] == 'Greet somebody by name.'
    schema = greet['requestBody']['content']['application/json']['schema']
    assert schema['properties'] == {'name': {}} and schema['required'] == ['name']
    echo = doc['paths']['/rpc/Greeting/echo']['post']['requestBody']['content']['application/json']['schema']
    assert echo['properties'] == {'value': {}} and 'required' not in echo
    assert '/rpc/Greeting/ping' not in doc['paths'] and not any('/Gateway/' in p for p in doc['paths'])


def test_bad_command_line_is_one_line_and_exit_2(cluster):
    from conftest import one_line_error
    assert 'must be 0..65535' in one_line_error(cluster.run('gateway', '--port', '70000'), 2)
    assert '--keepalive' in one_line_error(cluster.run('gateway', '--keepalive', '0'), 2)
