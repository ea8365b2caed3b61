"""fannode's HTTP server (fannode.web.lean) against the bytes an attacker or a demanding
client sends, from a real socket: each answer is what RFC 9112 / 9110 asks for."""
from __future__ import annotations

import pytest

import test_lean_server
import test_server

site = test_lean_server.site  # the fixture: a Site served by fannode.web.lean
answer, connect = test_lean_server.answer, test_lean_server.connect

GET = b'GET /text HTTP/1.1\r\nHost: x\r\n\r\n'


@pytest.mark.parametrize('first', [
    GET,
    b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
    b'POST /echo HTTP/1.1\r\nHost: x\r\n\r\n',  # no length: no body (RFC 9112 6.3)
], ids=['get', 'post', 'post-no-length'])
@pytest.mark.parametrize('bad', [b'GET /text HTTP/1.1\r\nBad Header\r\n\r\n', b'abc\r\n\r\n',
                                 b'GET /text HTTP/1.1\r\n' + b'X-A: b\r\n' * 101 + b'\r\n'],
                         ids=['bad-header', 'garbage', '101-headers'])
def test_a_bad_request_pipelined_after_good_ones_does_not_cost_them_their_answers(site, first, bad):
    sock = connect(site)
    sock.sendall(GET + first + bad)
    assert answer(sock)[:3:2] == (200, b'hi')
    assert answer(sock, first[:4].decode().strip())[0] == 200
    assert answer(sock)[0] in (400, 431) and test_server.closed(sock)


@pytest.mark.parametrize('connection', [b'close', b'keep-alive, Close'])
def test_connection_close_is_answered_whatever_follows_it_then_closed(site, connection):
    # RFC 9112 9.6: answer the request that said close, process nothing after it.
    sock = connect(site)
    sock.sendall(b'GET /text HTTP/1.1\r\nHost: x\r\nConnection: ' + connection + b'\r\n\r\n' + GET)
    status, headers, body = answer(sock)
    assert (status, body, headers['Connection']) == (200, b'hi', 'close') and test_server.closed(sock)


def test_head_of_a_streamed_response_claims_no_length_it_does_not_know(site):
    # RFC 9110 9.3.2 / 8.6: a Content-Length on HEAD must be the length GET would send.
    sock = connect(site)
    sock.sendall(b'HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n' + GET)
    status, headers, body = answer(sock, 'HEAD')
    assert (status, headers['Content-Length'], body) == (200, None, b'')
    assert answer(sock)[:3:2] == (200, b'hi')  # no stray bytes between the two


@pytest.mark.parametrize('coding', [b'gzip, chunked', b'gzip\r\nTransfer-Encoding: chunked'])
def test_a_transfer_coding_the_server_does_not_decode_is_501_not_an_empty_body(site, coding):
    # RFC 9112 6.1: a server that receives a transfer coding it does not understand SHOULD 501.
    sock = connect(site)
    sock.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ' + coding + b'\r\n\r\n'
                 b'3\r\nabc\r\n0\r\n\r\n')
    assert answer(sock)[0] == 501 and test_server.closed(sock)


def test_two_host_headers_are_400(site):
    # RFC 9112 3.2: MUST respond 400 to more than one Host field line.
    sock = connect(site)
    sock.sendall(b'GET /text HTTP/1.1\r\nHost: a.example\r\nHost: evil.example\r\n\r\n')
    assert answer(sock)[0] == 400 and test_server.closed(sock)


def test_a_response_sent_before_an_unread_body_says_the_connection_closes(site):
    # RFC 9110 10.1.1: a final answer before the body is read SHOULD say whether it closes.
    sock = connect(site)
    sock.sendall(b'POST /text HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
    status, headers, body = answer(sock)
    assert (status, body, headers['Connection']) == (200, b'hi', 'close') and test_server.closed(sock)


@pytest.mark.parametrize('path, status', [('/echo', 413), ('/text', 200)])
def test_a_chunked_body_over_max_body_closes_the_connection_even_when_it_came_whole(site, path, status):
    # docs/web.md: a chunked body over max_body is 413 from the read that passes it, and closed.
    sock = connect(site)
    body = b'100\r\n' + b'a' * 256 + b'\r\n'
    sock.sendall(('POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' % path).encode()
                 + body * 5 + b'0\r\n\r\n' + GET)
    status_, headers, _ = answer(sock, 'POST')
    assert (status_, headers['Connection']) == (status, 'close') and test_server.closed(sock)


def test_an_http_1_0_request_with_transfer_encoding_is_answered_then_closed(site):
    # RFC 9112 6.1: its framing is faulty, even kept alive: close after processing it.
    sock = connect(site)
    sock.sendall(b'POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n'
                 b'3\r\nabc\r\n0\r\n\r\n' + GET)
    status, headers, body = answer(sock, 'POST')
    assert (status, body, headers['Connection']) == (200, b'abc', 'close') and test_server.closed(sock)


def test_trailers_over_the_header_limits_fail_the_body_read_at_once(site):
    sock = connect(site)
    sock.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n'
                 + b'X-T: 1\r\n' * 101 + b'\r\n')
    status, _, body = answer(sock, 'POST')  # at once, not a stall of idle_timeout waiting for more
    assert (status, b'badly framed' in body) == (400, True) and test_server.closed(sock)
