"""A Python console inside a running instance (`fannode shell --remote`), like gevent's
backdoor: opt-in (FANNODE_BACKDOOR=1, `fannode instance --backdoor`, `backdoor: true`),
on 127.0.0.1 only, without authentication: anyone who can connect to loopback on this
host can run code as the instance's user."""
from __future__ import annotations

import builtins
import os
import socket
import sys
from typing import Any

import gevent.pool
from gevent import getcurrent
from gevent.server import StreamServer

from fannode.core.config import Config
from fannode.core.console import Console

ENV = 'FANNODE_BACKDOOR'
# The first line `fannode shell --remote` sends: a Python comment, so harmless anywhere.
# QUIET (stdin not a terminal) turns off the banner and the prompts, which would
# otherwise end up in the output of a piped session.
HELLO, QUIET = '#fannode-shell', '#fannode-shell quiet'


def wanted(config: Config) -> bool:
    if os.environ.get(ENV, '').strip().lower() in ('1', 'true', 'yes', 'on'):
        return True
    return config.require('backdoor', bool, False)


def start(container: Any) -> 'Backdoor':
    names = {'container': container, 'proxy': container.proxy, 'emit': container.emit,
             'interfaces': container.interfaces}
    names.update((n, i) for n, i in container.interfaces.items() if n.isidentifier())
    banner = ('fannode instance %s (pid %d): %s\n' % (container.id[:8], os.getpid(), ', '.join(sorted(names)))
              + 'quit() or Ctrl-D leaves; the instance goes on.')
    server = Backdoor(names, banner)
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

    def __init__(self, names: dict[str, Any], banner: str):
        super().__init__(('127.0.0.1', 0), spawn=gevent.pool.Pool())  # a pool: stop() ends the sessions
        self.names, self.banner = names, banner

    def handle(self, conn: socket.socket, _address: Any) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
