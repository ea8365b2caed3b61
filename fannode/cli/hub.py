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

    def run(self, args: argparse.Namespace) -> int:
        import signal
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
        hub = Hub()
        host, port = parts.hostname or '127.0.0.1', parts.port or DEFAULT_PORT
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
