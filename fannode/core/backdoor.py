"""A Python console inside a running instance (`fannode shell --remote`), like gevent's
backdoor: opt-in (FANNODE_BACKDOOR=1, `fannode instance --backdoor`, `backdoor: true`).

Whoever reaches it runs code as the instance's user, so it is a unix socket, mode 0600, in
the user's runtime directory (private: fannode.core.rundir), and a connection
from a process of another user (root aside) is refused by its credentials (SO_PEERCRED).
"""
from __future__ import annotations

import builtins
import logging
import os
import socket
import struct
import sys
from typing import Any

import gevent.pool
from gevent import getcurrent
from gevent.server import StreamServer

from fannode.core.config import Config
from fannode.core.console import Console
from fannode.core.rundir import runtime_dir
from fannode.exceptions import FannodeError

log = logging.getLogger(__name__)

ENV = 'FANNODE_BACKDOOR'
# The first line `fannode shell --remote` sends: a Python comment, so harmless anywhere.
# QUIET (stdin not a terminal) turns off the banner and the prompts, which would
# otherwise end up in the output of a piped session.
HELLO, QUIET = '#fannode-shell', '#fannode-shell quiet'


def wanted(config: Config) -> bool:
    if os.environ.get(ENV, '').strip().lower() in ('1', 'true', 'yes', 'on'):
        return True
    return config.require('backdoor', bool, False)


MAX_PATH = 107  # bytes of a unix socket's path (sun_path, less its NUL)


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket, as the kernel says."""
    _pid, uid, _gid = struct.unpack('3i', conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize('3i')))
    return uid


def listen(path: str) -> socket.socket:
    if len(os.fsencode(path)) > MAX_PATH:
        raise FannodeError('cannot serve the backdoor at %s: longer than a unix socket path may be '
                           '(%d bytes); set $XDG_RUNTIME_DIR to a shorter directory' % (path, MAX_PATH))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if os.path.lexists(path):  # left by a process that died: ours, in our own directory
            os.unlink(path)
        sock.bind(path)
        os.chmod(path, 0o600)  # the directory keeps others out already; this says so too
        sock.listen(16)
    except OSError as e:
        sock.close()
        raise FannodeError('cannot serve the backdoor at %s: %s' % (path, e.strerror or e)) from None
    sock.setblocking(False)
    return sock


def start(container: Any) -> 'Backdoor':
    """The backdoor of `container`, serving; the container registers its `path` in discovery
    (meta['backdoor']) for `fannode shell --remote`."""
    names = {'container': container, 'proxy': container.proxy, 'emit': container.emit,
             'interfaces': container.interfaces}
    names.update((n, i) for n, i in container.interfaces.items() if n.isidentifier())
    banner = ('fannode instance %s (pid %d): %s\n' % (container.id[:8], os.getpid(), ', '.join(sorted(names)))
              + 'quit() or Ctrl-D leaves; the instance goes on.')
    server = Backdoor(names, banner, os.path.join(runtime_dir(), 'backdoor-%s.sock' % container.id[:12]))
    server.start()
    return server


class _SocketWriter:
    """sys.stdout and sys.stderr of a session: straight to the socket, unbuffered."""

    encoding = 'utf-8'

    def __init__(self, conn: socket.socket):
        self.conn = conn

    def write(self, data: str) -> int:
        self.conn.sendall(data.encode(self.encoding, 'backslashreplace'))
        return len(data)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class _Router:
    """sys.stdout or sys.stderr once a session has run a statement: a greenlet running a
    session's statement writes to that session's socket, every other greenlet (the
    instance's requests, which may run while a statement waits) to the stream that was
    there before."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.sessions: dict[Any, _SocketWriter] = {}

    def _target(self) -> Any:
        return self.sessions.get(getcurrent(), self.stream)

    def write(self, data: str) -> int:
        return self._target().write(data)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class _Session(Console):
    def runcode(self, code: Any) -> None:
        routers = []
        for name in ('stdout', 'stderr'):
            router = getattr(sys, name)
            if not isinstance(router, _Router):
                router = _Router(router)
                setattr(sys, name, router)
            router.sessions[getcurrent()] = self.out
            routers.append(router)
        try:
            super().runcode(code)
        finally:
            for router in routers:
                router.sessions.pop(getcurrent(), None)


class _Quit:
    """quit() and exit() of a session: the site ones would close the instance's stdin."""

    def __call__(self, code: Any = None) -> None:
        raise SystemExit(code)

    def __repr__(self) -> str:
        return 'Use quit() or Ctrl-D to leave the session (the instance goes on)'


class Backdoor(StreamServer):
    """Serves one console session per connection, each in a greenlet with a namespace
    of its own. Like gevent.backdoor, plus the greeting line and quiet mode."""

    def __init__(self, names: dict[str, Any], banner: str, path: str):
        # a pool: stop() ends the sessions
        super().__init__(listen(path), spawn=gevent.pool.Pool())
        self.names, self.banner, self.path = names, banner, path

    def stop(self, timeout: float | None = None) -> None:
        super().stop(timeout)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def handle(self, conn: socket.socket, _address: Any) -> None:
        uid = peer_uid(conn)
        if uid not in (os.getuid(), 0):  # the socket's mode should have kept it out
            log.warning('backdoor: refused a connection from a process of uid %d', uid)
            conn.close()
            return
        reader = conn.makefile(mode='r', encoding='utf-8', errors='replace')
        try:
            first = reader.readline()
            greeting = first.strip()
            quiet = greeting == QUIET
            names = dict(self.names, __name__='__console__', __builtins__=builtins,
                         quit=_Quit(), exit=_Quit())
            session = _Session(names, reader, _SocketWriter(conn), quiet,
                               '' if greeting in (HELLO, QUIET) else first)
            session.interact(banner='' if quiet else self.banner, exitmsg='')
        except SystemExit:  # quit() in the session ends the session, not the instance
            pass
        except OSError:
            pass  # the client went away
        finally:
            reader.close()
            conn.close()
