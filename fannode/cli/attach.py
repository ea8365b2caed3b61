"""`fannode attach`: the node's dashboard against a node already running."""
from __future__ import annotations

import argparse

from fannode.cli.nodefile import NodeCommand, default_file


class AttachCommand(NodeCommand):
    """Open the dashboard of the node running ./node.yml (or --file), started with
    `fannode up -D` or in another terminal: the table, the log pane (from the log hub),
    traces and the node timeline. q detaches and leaves the node running; S stops it
    (asks first). No node running it: exit 3."""

    help = "Open the dashboard of a running node (q detaches; the node keeps running)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('--interval', '-n', type=float, default=1.0, metavar='S',
                            help='seconds between refreshes (default: 1)')

    def run(self, args: argparse.Namespace) -> int:
        import logging
        import sys

        from fannode.cli import output
        from fannode.exceptions import UsageError
        from fannode.node.client import NodeClient
        if not 0.1 <= args.interval <= 60:
            raise UsageError('--interval must be between 0.1 and 60 seconds, got %g' % args.interval)
        node_file = args.file or default_file()
        ps = NodeClient(node_file).ps(timeout=5.0)  # no node: NotRunning, exit 3
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError('fannode attach needs a terminal; `fannode ps` and `fannode tail` work anywhere')
        logging.getLogger().addHandler(logging.NullHandler())  # no stray warning over the screen

        from fannode.tui.remote import RemoteFeed
        from fannode.tui.remoteapp import AttachApp
        feed = RemoteFeed(node_file, ps['registry'], int(ps['pid']), args.interval)
        feed.start()
        app = AttachApp(feed, title='fannode attach: %s (pid %s)' % (ps['file'], ps['pid']))
        try:
            app.run()
        finally:
            feed.stop()
        if app.gone:
            output.out.print('the node for %s (pid %s) stopped' % (ps['file'], ps['pid']), markup=False)
        else:
            output.out.print('detached; the node for %s (pid %s) keeps running: fannode attach | fannode down'
                             % (ps['file'], ps['pid']), markup=False)
        return 0
