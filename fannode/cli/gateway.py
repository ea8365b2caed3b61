from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fannode.cli.instance import InstanceCommand

if TYPE_CHECKING:
    from fannode.core.config import Config

DEFAULT_PORT = 4090


class GatewayCommand(InstanceCommand):
    """Serve HTTP/JSON into the cluster, for clients in any language:

        fannode gateway --port 4090
        curl -d '{"name": "Joe"}' localhost:4090/rpc/Greeting/greet

    POST /rpc/SERVICE/METHOD calls a method (SERVICE@1 pins a version), POST /events/TYPE
    emits, GET /services lists them, GET /events/PATTERN streams events (server-sent
    events), GET /openapi.json describes every method. It runs as an instance (registered
    as `Gateway`); under `fannode up`, --socket NAME serves a socket the node owns.
    See docs/gateway.md.
    """

    help = 'Serve HTTP/JSON into the cluster: calls, events, an OpenAPI document.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--port', type=int, default=DEFAULT_PORT, dest='http_port', metavar='PORT',
                            help='HTTP port (default: %d)' % DEFAULT_PORT)
        parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default: 127.0.0.1; '
                            '0.0.0.0 listens everywhere)')
        parser.add_argument('--socket', dest='socket_name', metavar='NAME',
                            help="serve the node's listening socket NAME (node.yml `sockets:`) instead of --port")
        parser.add_argument('--timeout', type=float, default=None, metavar='SECONDS',
                            help="the calls' deadline when a request sends no X-Timeout (default: 3)")
        parser.add_argument('--max-streams', type=int, default=100, metavar='N',
                            help='event streams (GET /events/...) served at once (default: 100)')
        parser.add_argument('--keepalive', type=float, default=15.0, metavar='SECONDS',
                            help='seconds between keep-alive comments on a quiet event stream (default: 15)')
        parser.add_argument('--loglevel', '-l', default='INFO', metavar='LEVEL',
                            choices=['DEBUG', 'INFO', 'WARNING', 'ERROR', 'debug', 'info', 'warning', 'error'],
                            help='log level (default: INFO)')
        parser.add_argument('--stop-timeout', type=float, default=5.0, metavar='SECONDS',
                            help='how long running requests may take to finish on stop (default: 5)')
        # What `fannode instance` takes that the gateway sets itself.
        parser.set_defaults(ip=None, port=None, socket=[], backdoor=False)

    def config(self, args: argparse.Namespace) -> Config:
        from fannode.core.config import Config
        from fannode.exceptions import UsageError

        if not 0 <= args.http_port <= 65535:
            raise UsageError('--port must be 0..65535, got %d' % args.http_port)
        if args.timeout is not None and not 0 < args.timeout <= 300:
            raise UsageError('--timeout must be seconds above 0 and at most 300, got %s' % args.timeout)
        if not 0 < args.keepalive <= 3600:
            raise UsageError('--keepalive must be seconds above 0 and at most 3600, got %s' % args.keepalive)
        if args.max_streams < 0:
            raise UsageError('--max-streams must not be negative, got %d' % args.max_streams)
        section = {'class': 'fannode.gateway:Gateway', 'port': args.http_port, 'host': args.host,
                   'max_streams': args.max_streams, 'keepalive': args.keepalive}
        if args.socket_name:
            section['socket'] = args.socket_name
        if args.timeout is not None:
            section['timeout'] = args.timeout
        return Config({'interfaces': {'Gateway': section}}, 'fannode gateway')
