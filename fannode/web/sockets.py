"""Listening sockets: those a node hands to its children, by name, and the one a
WebInterface listens on (no werkzeug here: every instance reads this, web service or not)."""
from __future__ import annotations

import logging
import os
import socket

from fannode.core.config import Config
from fannode.exceptions import ConfigError, FannodeError

log = logging.getLogger(__name__)

SOCKETS_ENV = 'FANNODE_SOCKETS'  # "web=5,api=6": listening sockets inherited by fd
DEFAULT_PORT = 4080


def inherited_sockets(spec: str | None = None) -> dict[str, int]:
    """Names of inherited listening sockets and their fds, from `spec` or $FANNODE_SOCKETS."""
    spec = os.environ.get(SOCKETS_ENV, '') if spec is None else spec
    found = {}
    for item in filter(None, (s.strip() for s in spec.split(','))):
        name, sep, fd = item.partition('=')
        if not sep or not fd.isdigit():
            raise ConfigError("bad socket %r: expected NAME=FD, e.g. web=5" % item)
        found[name] = int(fd)
    return found


def listener(config: Config, service: str, sockets: dict[str, int]) -> socket.socket:
    """The listening socket of a WebInterface: one handed over by the node, if its config
    names one, else one bound to its `host` and `port`."""
    name = config.get('socket')
    if name is not None and not sockets:
        # Run on its own (not under `fannode up`): the same config listens on `port`.
        log.info("%s: no sockets inherited from a node; listening on port %s instead of socket '%s'",
                 service, config.get('port', DEFAULT_PORT), name)
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
        raise FannodeError('%s: cannot listen on %s:%d: %s' % (service, host, port, e.strerror)) from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock
