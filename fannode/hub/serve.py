"""Running a hub process until SIGTERM or Ctrl-C: the cluster's hub at the registry URL,
or a log-only hub that announces itself in the cluster's registry as `fannode.logs`, so
`tail`, `trace` and `top` on any machine find it."""
from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from typing import Any

import zmq

from fannode.core.addresses import announced
from fannode.core.instance import InstanceInfo
from fannode.exceptions import FannodeError
from fannode.hub.client import LOG_SERVICE
from fannode.hub.server import Hub


def run_hub(host: str, port: int, journal: str | None, url: str) -> None:
    """The hub at host:port, its queued events kept in `journal` (None: in memory)."""
    try:
        hub = Hub(journal=journal)
    except (OSError, sqlite3.Error) as e:
        raise FannodeError('cannot open the journal %s: %s' % (journal, e)) from None
    try:
        hub.bind(host, port)
    except zmq.ZMQError as e:
        raise FannodeError('cannot listen on %s:%d: %s (is a hub already running?)' % (host, port, e)) from None
    hub.start()
    print('hub listening at %s' % url, flush=True)
    wait_for_signal()
    hub.stop()


def run_log_hub(host: str, port: int, registry: Any) -> None:
    """A hub serving only logs at host:port, registered in `registry` (a
    fannode.discovery.Registry of any kind) while it runs."""
    hub = Hub(logs_only=True)
    try:
        endpoint = hub.bind(host, port)
    except zmq.ZMQError as e:
        raise FannodeError('cannot listen on %s:%d: %s' % (host, port, e)) from None
    endpoint = announced(endpoint, host, registry.url)
    hub.start()
    info = InstanceInfo(id=uuid.uuid4().hex, endpoint=endpoint, services=[LOG_SERVICE], pid=os.getpid(),
                        host=socket.gethostname(), version='', started=time.time(), meta={})
    registry.register(info)
    print('log hub listening at %s' % endpoint, flush=True)
    wait_for_signal()
    registry.unregister(info)
    registry.close()
    hub.stop()


def wait_for_signal() -> None:
    import signal

    import gevent
    import gevent.event
    stop = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    stop.wait()


def default_journal(host: str, port: int) -> str:
    state = os.environ.get('XDG_STATE_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'state')
    return os.path.join(state, 'fannode', 'hub-%s-%d.sqlite3' % (host, port))
