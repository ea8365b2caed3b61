"""The default HTTP server (fannode.web.lean, httptools on gevent's StreamServer) for what
gevent.pywsgi did for us: keep-alive, pipelining, HTTP/1.0, HEAD, Expect: 100-continue,
streamed responses, bad requests; and the whole of test_server.py again on the server one
may still choose (`server: gevent`)."""
from __future__ import annotations

import http.client

import pytest
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response

import fannode
from fannode.core.config import loads_config
from fannode.exceptions import ConfigError
from fannode.web.server import SERVER_ENV, WebServer

import test_server

# test_server's tests and fixtures, collected here too: run on gevent.pywsgi (below).
globals().update({name: value for name, value in vars(test_server).items()
                  if name.startswith('test_') or name in ('web', 'close_clients')})


@pytest.fixture(autouse=True)
def on_gevent_pywsgi(request, monkeypatch):
    """test_server's tests run on `server: gevent`; this file's own on the default."""
    if request.function.__module__ == test_server.__name__:
        monkeypatch.setenv(SERVER_ENV, 'gevent')
    else:
        monkeypatch.delenv(SERVER_ENV, raising=False)


class Site(fannode.WebInterface):
    url_map = Map([Rule('/text', endpoint='text'), Rule('/echo', endpoint='echo', methods=['POST']),
                   Rule('/stream', endpoint='stream'), Rule('/dir/', endpoint='text'),
                   Rule('/headers', endpoint='headers')])

    def text(self, request):
        return 'hi'

    def echo(self, request):
        return request.get_data()

    def stream(self, request):
        return Response((piece for piece in (b'one ', b'two ', b'three')), content_type='text/plain')

    def headers(self, request):
        return {k: v for k, v in request.environ.items() if k.startswith('HTTP_')}


@pytest.fixture
def site():
    iface = Site(None, 'Site')
    iface.apply_config(loads_config('host: 127.0.0.1\nport: 0\naccess_log: false\nmax_body: 1000\n'
                                    'header_timeout: 2\nidle_timeout: 2\n'))
    server = WebServer(iface, {})
    server.start()
    server.port = server.listener.getsockname()[1]
    assert server.kind == 'lean'
    yield server
    server.stop(timeout=1)


def connect(server):
    READERS.clear()
    return test_server.connect(server)


class Reading:
    """A socket's responses read from one buffered file: pipelined ones arrive together."""

    def __init__(self, sock):
        self.file = sock.makefile('rb')

    def makefile(self, mode):
        return self

    def close(self):
        pass  # http.client closes it after each response: the next one is read from it too

    def __getattr__(self, name):
        return getattr(self.file, name)


READERS: dict = {}


def answer(sock, method='GET'):
    reading = READERS.setdefault(sock, Reading(sock))
    response = http.client.HTTPResponse(reading, method=method)
    response.begin()
    return response.status, response.headers, response.read()


def test_a_kept_alive_connection_serves_requests_in_turn_and_pipelined(site):
    sock = connect(site)
    sock.sendall(b'GET /text HTTP/1.1\r\nHost: x\r\n\r\n')
    status, headers, body = answer(sock)
    assert (status, body, headers['Content-Length'], headers['X-Trace-Id'] != '') == (200, b'hi', '2', True)
    assert headers['Date'].endswith(' GMT')
    sock.sendall(b'GET /text HTTP/1.1\r\nHost: x\r\n\r\n' * 2 + b'POST /echo HTTP/1.1\r\nHost: x\r\n'
                 b'Content-Length: 5\r\n\r\nhello')
    assert [answer(sock)[2] for _ in range(3)] == [b'hi', b'hi', b'hello']


def test_http_1_0_closes_unless_kept_alive(site):
    sock = connect(site)
    sock.sendall(b'GET /text HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
    status, headers, body = answer(sock)
    assert (status, headers['Connection'], body) == (200, 'keep-alive', b'hi')
    sock.sendall(b'GET /text HTTP/1.0\r\n\r\n')
    assert answer(sock)[2] == b'hi' and test_server.closed(sock)


def test_head_has_the_length_of_get_and_no_body(site):
    sock = connect(site)
    sock.sendall(b'HEAD /text HTTP/1.1\r\nHost: x\r\n\r\n')
    status, headers, body = answer(sock, 'HEAD')
    assert (status, headers['Content-Length'], body) == (200, '2', b'')
    sock.sendall(b'GET /text HTTP/1.1\r\nHost: x\r\n\r\n')  # nothing of a body came in between
    assert answer(sock)[2] == b'hi'


def test_expect_100_continue_is_answered_when_the_body_is_read(site):
    sock = connect(site)
    sock.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n')
    assert sock.recv(100) == b'HTTP/1.1 100 Continue\r\n\r\n'
    sock.sendall(b'abc')
    assert answer(sock)[:3:2] == (200, b'abc')


def test_a_streamed_response_is_chunked(site):
    sock = connect(site)
    sock.sendall(b'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
    status, headers, body = answer(sock)
    assert (status, headers['Transfer-Encoding'], body) == (200, 'chunked', b'one two three')
    sock.sendall(b'GET /text HTTP/1.1\r\nHost: x\r\n\r\n')
    assert answer(sock)[2] == b'hi'


def test_a_body_the_handler_ignores_is_skipped_and_the_connection_goes_on(site):
    sock = connect(site)
    sock.sendall(b'POST /text HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n' + b'x' * 900
                 + b'GET /text HTTP/1.1\r\nHost: x\r\n\r\n')
    assert [answer(sock)[2] for _ in range(2)] == [b'hi', b'hi']


@pytest.mark.parametrize('garbage', [b'\x00\x01\x02 nonsense\r\n\r\n', b'GET /text HTTP/1.1\r\nBad Header\r\n\r\n',
                                     b'GET /text HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n'])
def test_a_bad_request_is_400_and_the_next_connection_is_served(site, garbage):
    sock = connect(site)
    sock.sendall(garbage)
    assert answer(sock)[0] == 400 and test_server.closed(sock)
    assert test_server.request(site)[:3:2] == (200, b'hi')


def test_header_names_with_underscores_are_dropped(site):
    sock = connect(site)
    sock.sendall(b'GET /headers HTTP/1.1\r\nHost: x\r\nX_Trace_Id: forged\r\nX-Two: a\r\nX-Two: b\r\n\r\n')
    seen = answer(sock)[2]
    assert b'forged' not in seen and b'"HTTP_X_TWO": "a,b"' in seen


def test_a_redirect_names_the_host_the_client_asked(site):
    sock = connect(site)
    sock.sendall(b'GET /dir?q=1 HTTP/1.1\r\nHost: example.org:81\r\n\r\n')
    status, headers, _ = answer(sock)
    assert (status, headers['Location']) == (308, 'http://example.org:81/dir/?q=1')


def test_a_bad_server_choice_is_a_config_error(monkeypatch):
    iface = Site(None, 'Site')
    iface.apply_config(loads_config('host: 127.0.0.1\nport: 0\nserver: tornado\n'))
    with pytest.raises(ConfigError, match="server: expected one of lean, gevent, got 'tornado'"):
        WebServer(iface, {})


def test_the_old_server_stays_selectable():
    iface = Site(None, 'Site')
    iface.apply_config(loads_config('host: 127.0.0.1\nport: 0\naccess_log: false\nserver: gevent\n'))
    server = WebServer(iface, {})
    server.start()
    try:
        server.port = server.listener.getsockname()[1]
        assert server.kind == 'gevent' and test_server.request(server)[:3:2] == (200, b'hi')
    finally:
        server.stop(timeout=1)

