"""The HTTP server against hostile and unlucky clients, in process: the server and the
raw client sockets share one gevent loop. What is asserted is what a client sees (the
status, the connection closed) and what the server keeps (its connections)."""
from __future__ import annotations

import http.client
import logging
import tracemalloc

import gevent
import gevent.event
import pytest
from gevent import socket
from werkzeug.routing import Map, Rule

import fannode
from fannode.core.config import loads_config
from fannode.exceptions import ConfigError
from fannode.testing import wait_until
from fannode.web import conns
from fannode.web import server as web_server
from fannode.web.server import WebServer

DEADLINE = 10.0  # a client waits at most this long for anything the server should do at once


class Probe(fannode.WebInterface):
    url_map = Map([Rule('/text', endpoint='text'), Rule('/body', endpoint='body'),
                   Rule('/big', endpoint='big'), Rule('/hold', endpoint='hold')])

    def apply_config(self, config):
        super().apply_config(config)
        self.calls = 0
        self.holding = False
        self.release = gevent.event.Event()

    def text(self, request):
        self.calls += 1
        return 'hi'

    def body(self, request):
        return str(len(request.get_data()))

    def big(self, request):
        return b'x' * (16 << 20)

    def hold(self, request):
        self.holding = True
        self.release.wait()
        return 'released'


def serve(text):
    iface = Probe(None, 'Probe')
    iface.apply_config(loads_config('host: 127.0.0.1\nport: 0\naccess_log: false\n' + text))
    server = WebServer(iface, {})
    server.start()
    server.port = server.listener.getsockname()[1]
    return server


@pytest.fixture
def web():
    server = serve('max_body: 1000\nheader_timeout: 0.5\nidle_timeout: 0.5\n')
    yield server
    server.stop(timeout=1)


OPEN: list = []  # client sockets of the running test


@pytest.fixture(autouse=True)
def close_clients():
    yield
    while OPEN:
        OPEN.pop().close()


def connect(server):
    sock = socket.create_connection(('127.0.0.1', server.port))
    sock.settimeout(DEADLINE)
    OPEN.append(sock)
    return sock


def answer(sock):
    """(status, headers, body) of the next response on `sock`."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.headers, response.read()


def request(server, path='/text', head=''):
    sock = connect(server)
    with sock:
        sock.sendall(('GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n' % (path, head)).encode())
        return answer(sock)


def closed(sock):
    """True once the server has closed `sock` (what it sent before is skipped)."""
    while sock.recv(65536):
        pass
    return True


def connections(server):
    return len(server.server.pool)  # a greenlet per connection


def test_a_client_that_sends_nothing_gets_408_and_is_closed(web):
    sock = connect(web)
    assert answer(sock)[0] == 408 and closed(sock)
    wait_until(lambda: not connections(web), DEADLINE, 'the server to let the connection go')


@pytest.mark.parametrize('path', ['/text', '/_health'])
def test_a_head_that_trickles_in_is_cut_off_after_header_timeout(web, path):
    sock = connect(web)
    head = ('GET %s HTTP/1.1\r\nHost: x\r\n' % path).encode() + b'X-Slow: ' + b'z' * 10000

    def trickle():  # a byte every 20 ms: always within a socket timeout, never done
        for i in range(len(head)):
            sock.sendall(head[i:i + 1])
            gevent.sleep(0.02)
    sender = gevent.spawn(trickle)
    try:
        assert answer(sock)[0] == 408 and closed(sock)
    finally:
        sender.kill()


def test_a_kept_alive_connection_is_closed_after_idle_timeout(web):
    sock = connect(web)
    sock.sendall(b'GET /text HTTP/1.1\r\nHost: x\r\n\r\n')
    assert answer(sock)[2] == b'hi'
    assert sock.recv(100) == b''  # closed, with no response to a request never made


def test_a_stalled_reader_of_a_big_response_is_let_go_after_idle_timeout(web, caplog):
    sock = socket.socket()
    OPEN.append(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # no autotuning to take it all
    sock.connect(('127.0.0.1', web.port))
    sock.sendall(b'GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
    assert sock.recv(1) == b'H'  # the response is on its way: the server is writing it
    wait_until(lambda: not connections(web), DEADLINE, 'the stalled connection to be closed')
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    sock.close()


def test_a_body_that_stops_coming_is_let_go_after_idle_timeout(web, caplog):
    sock = connect(web)
    sock.sendall(b'POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n' + b'x' * 10)
    assert answer(sock)[0] == 400 and closed(sock)  # the body never came whole
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize('path', ['/body', '/text'], ids=['read', 'ignored'])
@pytest.mark.parametrize('body', [b'a\r\n0123', b'zz\r\n'], ids=['stalled', 'badly framed'])
def test_a_chunked_body_that_stalls_or_is_malformed_closes_the_connection(web, caplog, path, body):
    sock = connect(web)
    sock.sendall(('POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' % path).encode()
                 + body)
    assert answer(sock)[0] == (400 if path == '/body' else 200) and closed(sock)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_beyond_max_connections_new_ones_get_503_and_accepting_goes_on():
    server = serve('max_connections: 3\n')
    try:
        held = [connect(server) for _ in range(3)]
        wait_until(lambda: connections(server) == 3, DEADLINE, 'three connections served')
        status, headers, body = request(server)
        assert (status, headers['Retry-After'], body) == (503, '1', b'too many connections; try again\n')
        for sock in held:
            sock.close()
        wait_until(lambda: not connections(server), DEADLINE, 'the held connections to go')
        assert request(server)[:3:2] == (200, b'hi')
    finally:
        server.stop(timeout=1)


def test_connections_refused_over_max_connections_hold_no_fd_past_their_503(monkeypatch):
    """A refused connection lingered outside the connections counted, for 2 s each: a flood
    of them ran the process out of fds. Now each is answered and let go at once."""
    monkeypatch.setattr(conns, 'LINGER_SECONDS', 60.0)  # a linger would outlast the test
    server = serve('max_connections: 3\n')
    try:
        held = [connect(server) for _ in range(3)]
        wait_until(lambda: connections(server) == 3, DEADLINE, 'three connections served')
        flood = [connect(server) for _ in range(20)]  # they keep their side open, and send
        for sock in flood[:10]:
            sock.sendall(b'GET /text HTTP/1.1\r\nHost: x\r\n\r\n')
        assert [answer(sock)[0] for sock in flood] == [503] * 20
        wait_until(lambda: connections(server) == 3, DEADLINE / 2, 'the refused connections to be let go')
        for sock in held:
            sock.close()
        wait_until(lambda: not connections(server), DEADLINE, 'the held connections to go')
        assert request(server)[:3:2] == (200, b'hi')
    finally:
        server.stop(timeout=1)


def send_chunked(sock, path, total, piece=64 << 10):
    """Send `total` bytes as a chunked body, in a greenlet; stops quietly if the server closes."""
    def send():
        sock.sendall(('POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' % path).encode())
        chunk = b'%x\r\n%s\r\n' % (piece, b'x' * piece)
        try:
            for _ in range(total // piece):
                sock.sendall(chunk)
            sock.sendall(b'0\r\n\r\n')
        except OSError:
            pass
    return gevent.spawn(send)


def test_a_chunked_body_over_max_body_is_413_and_never_held_whole():
    server = serve('max_body: 1048576\n')
    try:
        sock = connect(server)
        tracemalloc.start()
        sender = send_chunked(sock, '/body', 20 << 20)
        status, _, body = answer(sock)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert (status, b'Too Large' in body) == (413, True)
        assert closed(sock) and peak < 5 << 20
        sender.join(DEADLINE)
    finally:
        server.stop(timeout=1)


def test_a_chunked_body_the_handler_ignores_is_not_read_past_max_body(web):
    sock = connect(web)
    sender = send_chunked(sock, '/text', 20 << 20, 1 << 10)
    assert answer(sock)[2] == b'hi'
    assert closed(sock)  # the rest is not skipped through to a next request
    sender.join(DEADLINE)


def test_a_chunked_body_within_max_body_is_read_whole(web):
    sock = connect(web)
    sock.sendall(b'POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
                 b'3e8\r\n' + b'x' * 1000 + b'\r\n0\r\n\r\n')
    assert answer(sock)[:3:2] == (200, b'1000')


def test_a_content_length_over_max_body_is_413_before_the_handler_runs(web):
    sock = connect(web)
    sock.sendall(b'POST /text HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n' + b'x' * 5000)
    assert answer(sock)[:3:2] == (413, b'request body too large\n')
    assert closed(sock) and web.iface.calls == 0


@pytest.mark.parametrize('head', [
    ''.join('X-Many-%d: 1\r\n' % i for i in range(150)),
    'X-Huge: %s\r\n' % ('y' * 70000),
], ids=['150 headers', 'a header of 70 KB'])
def test_too_many_or_too_large_headers_are_431(web, caplog, head):
    assert request(web, head=head)[0] == 431
    assert request(web)[:3:2] == (200, b'hi')
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_url_of_a_megabyte_is_414_and_the_next_client_is_served(web):
    sock = connect(web)
    sender = gevent.spawn(sock.sendall, b'GET /' + b'x' * (1 << 20) + b' HTTP/1.1\r\nHost: x\r\n\r\n')
    assert answer(sock)[0] == 414
    sender.join(DEADLINE)
    assert request(web)[:3:2] == (200, b'hi')


def test_many_query_args_within_the_request_line_are_fine(web):
    assert request(web, '/text?' + '&'.join('a%d=1' % i for i in range(1000)))[:3:2] == (200, b'hi')


@pytest.mark.parametrize('cut', [b'GET /text', b'GET /text HTTP/1.1\r\nHost: x\r\n'],
                         ids=['in the request line', 'in the headers'])
def test_a_head_cut_short_by_the_client_is_not_a_request(web, cut):
    sock = connect(web)
    sock.sendall(cut)
    sock.shutdown(socket.SHUT_WR)
    assert sock.recv(100) == b'' and web.iface.calls == 0


def test_stop_closes_idle_connections_at_once_and_lets_a_running_request_finish(web):
    web.server.idle_timeout = DEADLINE * 3  # not what closes the idle one here
    idle = connect(web)
    idle.sendall(b'GET /text HTTP/1.1\r\nHost: x\r\n\r\n')
    assert answer(idle)[2] == b'hi'
    busy = connect(web)
    busy.sendall(b'GET /hold HTTP/1.1\r\nHost: x\r\n\r\n')
    wait_until(lambda: web.iface.holding, DEADLINE, 'the held request to run')
    stopping = gevent.spawn(web.stop, DEADLINE * 3)
    assert idle.recv(100) == b''
    web.iface.release.set()
    status, headers, body = answer(busy)
    assert (status, headers['Connection'], body) == (200, 'close', b'released')
    assert closed(busy)
    stopping.join(DEADLINE)
    assert stopping.dead


def test_a_handler_that_never_returns_does_not_hold_stop(web):
    sock = connect(web)
    sock.sendall(b'GET /hold HTTP/1.1\r\nHost: x\r\n\r\n')
    wait_until(lambda: web.iface.holding, DEADLINE, 'the request to run')
    stopping = gevent.spawn(web.stop, 0.1)
    assert closed(sock)
    stopping.join(DEADLINE)
    assert stopping.dead


@pytest.mark.parametrize('line, message', [
    ('header_timeout: 0', "4: header_timeout: must be positive, got 0"),
    ('idle_timeout: soon', "4: idle_timeout: expected int or float, got str 'soon'"),
    ('max_connections: 1.5', "4: max_connections: expected int, got float 1.5"),
    ('max_body: -1', "4: max_body: must be a number of bytes, got -1"),
])
def test_bad_limits_are_one_line_config_errors(line, message):
    with pytest.raises(ConfigError) as info:
        serve(line + '\n')
    assert str(info.value) == '<string>:' + message


def test_max_connections_is_kept_within_the_fd_limit(monkeypatch, caplog):
    monkeypatch.setattr(web_server.resource, 'getrlimit', lambda _: (1024, 4096))
    caplog.set_level(logging.INFO, 'fannode.web.server')
    server = serve('')
    try:
        assert server.server.max_connections == 1024 - web_server.FD_RESERVE
    finally:
        server.stop(timeout=1)
    assert caplog.messages[-1] == ('Probe: serving at most 896 connections at once, not 1000: the process '
                                   'may open 1024 files (ulimit -n), 128 of them kept for the rest '
                                   '($FANNODE_HTTP_FD_RESERVE)')
