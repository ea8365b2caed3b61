"""Serving a WebInterface on a port of its own or on a listening socket the node hands
over, a greenlet per connection: on fannode.web.lean (the default: httptools' C parser on
gevent's StreamServer) or on gevent.pywsgi (fannode.web.geventserver), by its `server` key.

What comes from the network is hostile, so each connection is bounded: the time to send a
request's head (`header_timeout`), the time it may sit idle or stall (`idle_timeout`), the
size of the head and of the body (`max_body`, chunked too: fannode.web.reading), and how
many connections a process serves at once (`max_connections`; beyond it a 503 at once,
and accepting goes on). docs/web.md lists them.
"""
from __future__ import annotations

import logging
import os
import resource
from typing import Any

from fannode.core.config import Config
from fannode.core.limits import setting
from fannode.web.interface import WebInterface
from fannode.web.sockets import listener

log = logging.getLogger(__name__)

# Defaults of a WebInterface's config keys of the same names (lower case).
HEADER_TIMEOUT = 10.0   # seconds to send a request's line and headers (from the connection, or
                        # from the first byte of a later request on it)
IDLE_TIMEOUT = 75.0     # seconds a kept-alive connection waits for its next request; also
                        # how long a read of a body, or a response write, may wait on the client
MAX_CONNECTIONS = 1000  # connections one process serves at once

# Process-wide.
FD_RESERVE = setting('FANNODE_HTTP_FD_RESERVE', 128, 0)  # fds left for all but connections
# Which server: 'lean' (fannode.web.lean: httptools' C parser on gevent's StreamServer) or
# 'gevent' (fannode.web.geventserver: gevent.pywsgi). The interface's `server` key wins.
SERVER_ENV = 'FANNODE_HTTP_SERVER'
SERVERS = ('lean', 'gevent')


def _positive(config: Config, key: str, default: Any, kind: Any = (int, float)) -> Any:
    value = config.require(key, kind, default)
    if value <= 0:
        raise config.error(key, 'must be positive, got %s' % value)
    return value


def limits_of(iface: WebInterface) -> dict[str, Any]:
    """The interface's connection limits, max_connections within the process's fd limit."""
    config = iface.web_config
    wanted = _positive(config, 'max_connections', MAX_CONNECTIONS, int)
    limits = {'header_timeout': _positive(config, 'header_timeout', HEADER_TIMEOUT),
              'idle_timeout': _positive(config, 'idle_timeout', IDLE_TIMEOUT), 'max_connections': wanted}
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    room = max(files - FD_RESERVE, files // 2)
    if files != resource.RLIM_INFINITY and wanted > room:
        # Past the fd limit accept() fails, and nobody gets even a 503.
        (log.warning if 'max_connections' in config else log.info)(
            '%s: serving at most %d connections at once, not %d: the process may open %d files '
            '(ulimit -n), %d of them kept for the rest ($FANNODE_HTTP_FD_RESERVE)',
            iface.name, room, wanted, files, files - room)
        limits['max_connections'] = room
    return limits


def server_kind(config: Config) -> str:
    """The server a WebInterface runs on: its `server` key, else $FANNODE_HTTP_SERVER, else lean."""
    default = os.environ.get(SERVER_ENV, '').strip().lower() or 'lean'
    if default not in SERVERS:
        raise config.error('server', '$%s is %r: expected one of %s' % (SERVER_ENV, default, ', '.join(SERVERS)))
    kind = config.require('server', str, default)
    if kind not in SERVERS:
        raise config.error('server', 'expected one of %s, got %r' % (', '.join(SERVERS), kind))
    return kind


class WebServer:
    def __init__(self, iface: WebInterface, sockets: dict[str, int]):
        self.iface = iface
        iface.check_routes()  # a url_map naming a method that is not there: refused now
        limits = limits_of(iface)
        self.kind = server_kind(iface.web_config)
        self.listener = listener(iface.web_config, iface.name, sockets)
        host, port = self.listener.getsockname()[:2]
        self.url = 'http://%s:%d' % ('127.0.0.1' if host in ('0.0.0.0', '::') else host, port)
        if self.kind == 'gevent':
            from fannode.web.geventserver import Server
        else:
            from fannode.web.lean import LeanServer as Server
        self.server: Any = Server(self.listener, iface, limits)

    def start(self) -> None:
        self.server.start()
        self.iface.serving = True

    def stop(self, timeout: float) -> None:
        """Answer health checks with 503, stop accepting, close idle connections, let
        running requests finish (each connection closes after its answer)."""
        self.iface.serving = False
        self.iface.closing = True
        self.server.close_idle()
        self.server.stop(timeout=timeout)
