"""`fannode down`: stop the node running node.yml and wait until all of it is gone."""
from __future__ import annotations

import argparse

from fannode.cli.nodefile import NodeCommand, default_file


class DownCommand(NodeCommand):
    """Stop the node running ./node.yml (or --file) gracefully, as Ctrl-C would, and wait
    until the node and every process it started have exited. After --timeout seconds
    what is left is killed. No node running it: exit 3."""

    help = 'Stop the node (one started with `fannode up -D`, or any) and wait until all is gone.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('--timeout', '-t', type=float, default=60.0, metavar='S',
                            help='seconds to wait for a graceful stop before killing what is left (default: 60)')
        parser.add_argument('--json', action='store_true',
                            help='print {"file", "pid", "processes", "seconds", "killed"}')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import output
        from fannode.exceptions import UsageError
        from fannode.node import stopnode
        if not args.timeout > 0:
            raise UsageError('--timeout must be more than 0 seconds, got %g' % args.timeout)

        def progress(left: int) -> None:
            if not args.json:
                output.err.print(stopnode.left(left), markup=False)
        done = stopnode.stop(args.file or default_file(), args.timeout, progress)
        if args.json:
            output.print_json(done.as_json())
            return 0
        how = ('killed what was left after %gs' % args.timeout) if done.killed else 'stopped'
        output.out.print('%s node %s (pid %d): %d processes gone in %.1fs' % (
            how, done.file, done.pid, done.processes, done.seconds), markup=False)
        return 0
