"""`fannode scale NAME COUNT`: set a block's process count on the running node."""
from __future__ import annotations

import argparse

from fannode.cli.nodefile import NodeCommand


class ScaleCommand(NodeCommand):
    """Set how many processes an instance block runs, until node.yml changes it."""

    help = 'Scale an instance block: fannode scale greeting 5'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('name', help='the instance block in node.yml')
        parser.add_argument('count', type=int, help='processes to run')
        parser.add_argument('--json', action='store_true', help='print {"block", "from", "to"}')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import output
        done = self.node(args).scale(args.name, args.count)
        if args.json:
            output.print_json({'block': done['name'], 'from': done['before'], 'to': done['count']})
            return 0
        output.out.print('%s: %d → %d processes' % (done['name'], done['before'], done['count']))
        return 0
