"""`fannode top`: a live dashboard of the cluster in the terminal."""
from __future__ import annotations

import argparse

from fannode.cli.base import Command


class TopCommand(Command):
    """Every service and instance of the cluster, refreshed every second: pid, host,
    state, uptime, restarts, cpu, memory, calls per second, errors, p99 latency. Scale
    (+/-) and restart (r/R) through the node running --file; logs (l) and traces (t);
    ? for the keys, q to quit.

    The registry is --registry, then $FANNODE_REGISTRY, then the one of the node running
    --file, then registry: in that file, then hub://127.0.0.1:4010.
    """

    help = 'A live dashboard of services and instances (Textual).'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--file', '-f', default='node.yml', metavar='FILE',
                            help='the node.yml of the node to scale and restart through (default: ./node.yml)')
        parser.add_argument('--interval', '-n', type=float, default=1.0, metavar='S',
                            help='seconds between refreshes (default: 1)')

    def run(self, args: argparse.Namespace) -> int:
        import os

        from fannode.exceptions import UsageError
        if not 0.1 <= args.interval <= 60:
            raise UsageError('--interval must be between 0.1 and 60 seconds, got %g' % args.interval)
        if args.file != 'node.yml' and not os.path.exists(args.file):
            raise UsageError('%s: no such file' % args.file)
        import logging
        logging.getLogger().addHandler(logging.NullHandler())  # no stray warning over the screen

        from fannode.tui.app import TopApp
        from fannode.tui.source import TopSource
        source = TopSource(registry_url(args), args.file, args.interval)
        source.start()
        try:
            TopApp(source).run()
        finally:
            source.stop()
        return 0


def registry_url(args: argparse.Namespace) -> str:
    """As every command finds it, except that a node running --file knows its own."""
    import os

    from fannode.exceptions import FannodeError
    from fannode.settings import resolve_url
    if args.registry or os.environ.get('FANNODE_REGISTRY'):
        return resolve_url('registry', args.registry, args.file)
    from fannode.node.client import NodeClient
    try:
        return NodeClient(args.file).ps(timeout=1.0)['registry']
    except FannodeError:  # no node runs it: the file's registry, or the default
        return resolve_url('registry', None, args.file)
