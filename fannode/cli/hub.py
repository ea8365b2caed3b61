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

    def run(self, args: argparse.Namespace) -> int:
        import signal
        import sqlite3
        from urllib.parse import urlsplit

        import gevent
        import gevent.event
        import zmq

        from fannode.core import logs
        from fannode.zmqrpc.link import DEFAULT_PORT
        from fannode.exceptions import FannodeError, UsageError
        from fannode.node.hub.server import Hub
        from fannode.settings import resolve_url

        url = resolve_url('registry', args.registry)
        parts = urlsplit(url)
        if parts.scheme != 'hub':
            raise UsageError('the registry is %s, not a hub:// URL; nothing for `fannode hub` to serve' % url)
        logs.setup(args.loglevel, 'hub')
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
        stop = gevent.event.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, stop.set)
        stop.wait()
        hub.stop()
        return 0


def default_journal(host: str, port: int) -> str:
    import os
    state = os.environ.get('XDG_STATE_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'state')
    return os.path.join(state, 'fannode', 'hub-%s-%d.sqlite3' % (host, port))
