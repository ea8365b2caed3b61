"""`fannode restart NAME`: restart one block of the running node."""
from __future__ import annotations

import argparse

from fannode.cli.nodefile import NodeCommand


class RestartCommand(NodeCommand):
    """Stop an instance block's processes gracefully and start them again."""

    help = 'Restart an instance block.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('name', help='the instance block in node.yml')
        parser.add_argument('--json', action='store_true', help='print {"block", "restarted"}')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import output
        done = self.node(args).restart(args.name)
        if args.json:
            output.print_json({'block': done.get('name', args.name), 'restarted': True})
            return 0
        output.out.print('%s restarted' % args.name)
        return 0
