from __future__ import annotations

import argparse

from fannode.cli.base import Command


class HubCommand(Command):
    """Run the embedded hub: service discovery for one machine, no ZooKeeper needed.

    It listens where the registry URL points (--registry, $FANNODE_REGISTRY, registry: in
    ./node.yml, or hub://127.0.0.1:4010). Instances re-register by themselves when a hub
    restarts.
    """

    help = 'Run the embedded hub (discovery for one machine).'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--loglevel', '-l', default='INFO', metavar='LEVEL', help='log level (default: INFO)')
        parser.add_argument('--journal', metavar='FILE',
                            help='where queued events are kept across restarts (default: '
                                 '$XDG_STATE_HOME/fannode/hub-HOST-PORT.sqlite3, ~/.local/state when unset)')
        parser.add_argument('--no-journal', action='store_true',
                            help='keep queued events in memory only: a restart loses them')
        parser.add_argument('--logs-only', action='store_true',
                            help='serve only as a log hub (for tail, trace, top) at --listen, registered '
                                 'in the --registry (any kind) as service fannode.logs; `fannode up` runs '
                                 'one on clusters without a hub')
        parser.add_argument('--listen', metavar='HOST:PORT', default='0.0.0.0:0',
                            help='with --logs-only: where to listen (default: 0.0.0.0 and a free port)')

    def run(self, args: argparse.Namespace) -> int:
        import sqlite3
        from urllib.parse import urlsplit

        import zmq

        from fannode.core import logsetup
        from fannode.hub.client import DEFAULT_PORT
        from fannode.exceptions import FannodeError, UsageError
        from fannode.hub.server import Hub
        from fannode.settings import resolve_url

        url = resolve_url('registry', args.registry)
        if args.logs_only:
            logsetup.setup(args.loglevel, 'logs')
            return serve_logs(url, args.listen)
        parts = urlsplit(url)
        if parts.scheme != 'hub':
            raise UsageError('the registry is %s, not a hub:// URL; nothing for `fannode hub` to serve' % url)
        logsetup.setup(args.loglevel, 'hub')
        host, port = parts.hostname or '127.0.0.1', parts.port or DEFAULT_PORT
        journal = None if args.no_journal else args.journal or default_journal(host, port)
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
        return 0


def wait_for_signal() -> None:
    import signal

    import gevent
    import gevent.event
    stop = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    stop.wait()


def serve_logs(registry_url: str, listen: str) -> int:
    """A hub serving only logs, announced in discovery so `tail` on any machine finds it."""
    import os
    import socket
    import time
    import uuid

    import zmq

    from fannode.runtime.container import reachable_ip
    from fannode.discovery import InstanceInfo, get_registry
    from fannode.exceptions import FannodeError, UsageError
    from fannode.logs.client import SERVICE
    from fannode.hub.server import Hub

    host, sep, port = listen.rpartition(':')
    if not sep or not port.isdigit():
        raise UsageError('--listen: expected HOST:PORT, got %r' % listen)
    hub = Hub()
    try:
        endpoint = hub.bind(host or '0.0.0.0', int(port))
    except zmq.ZMQError as e:
        raise FannodeError('cannot listen on %s: %s' % (listen, e)) from None
    if host in ('', '0.0.0.0', '*'):
        endpoint = endpoint.replace('//%s:' % (host or '0.0.0.0'), '//%s:' % reachable_ip(registry_url))
    hub.start()
    registry = get_registry(registry_url)
    info = InstanceInfo(id=uuid.uuid4().hex, endpoint=endpoint, services=[SERVICE], pid=os.getpid(),
                        host=socket.gethostname(), version='', started=time.time(), meta={})
    registry.register(info)
    print('log hub listening at %s' % endpoint, flush=True)
    wait_for_signal()
    registry.unregister(info)
    registry.close()
    hub.stop()
    return 0


def default_journal(host: str, port: int) -> str:
    import os
    state = os.environ.get('XDG_STATE_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'state')
    return os.path.join(state, 'fannode', 'hub-%s-%d.sqlite3' % (host, port))
