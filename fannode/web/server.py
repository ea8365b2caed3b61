"""Serving a WebInterface: gevent's WSGI server on a port of its own or on a listening
socket the node hands over, a greenlet per request."""
from __future__ import annotations

import logging
import socket

import gevent.pool
from gevent.pywsgi import WSGIHandler, WSGIServer

from fannode.exceptions import FannodeError
from fannode.web.interface import DEFAULT_PORT, WebInterface
from fannode.web.sockets import SOCKETS_ENV

log = logging.getLogger(__name__)

class Handler(WSGIHandler):
    def handle(self) -> None:
        # Without it, a keep-alive client waits ~40 ms for a delayed ACK on each response.
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a unix socket): nothing to tune
        super().handle()

    def log_request(self) -> None:
        pass  # the interface writes the access log, with the trace id


def listener_for(iface: WebInterface, sockets: dict[str, int]) -> socket.socket:
    config = iface.web_config
    name = config.get('socket')
    if name is not None and not sockets:
        # Run on its own (not under `fannode up`): the same config listens on `port`.
        log.info("%s: no sockets inherited from a node; listening on port %s instead of socket '%s'",
                 iface.name, config.get('port', DEFAULT_PORT), name)
        name = None
    if name is not None:
        if name not in sockets:
            raise config.error('socket', "no inherited socket '%s' (have: %s); the node passes them "
                               "with --socket NAME=FD or $%s" % (name, ', '.join(sockets) or 'none', SOCKETS_ENV))
        sock = socket.socket(fileno=sockets[name])
        sock.setblocking(False)
        return sock
    host = config.require('host', str, '0.0.0.0')
    port = config.require('port', int, DEFAULT_PORT)
    sock = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Several instances of one web service may bind the same port; the kernel spreads
    # connections over them, with no thundering herd.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise FannodeError('%s: cannot listen on %s:%d: %s' % (iface.name, host, port, e.strerror)) from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class WebServer:
    def __init__(self, iface: WebInterface, sockets: dict[str, int]):
        self.iface = iface
        self.listener = listener_for(iface, sockets)
        host, port = self.listener.getsockname()[:2]
        self.url = 'http://%s:%d' % ('127.0.0.1' if host in ('0.0.0.0', '::') else host, port)
        # A pool (unbounded) rather than bare greenlets: stop() waits only for a pool.
        self.server = WSGIServer(self.listener, iface.wsgi, handler_class=Handler, log=None,
                                 error_log=log, spawn=gevent.pool.Pool())

    def start(self) -> None:
        self.server.start()
        self.iface.serving = True

    def stop(self, timeout: float) -> None:
        """Answer health checks with 503, stop accepting, let running requests finish."""
        self.iface.serving = False
        self.server.stop(timeout=timeout)
