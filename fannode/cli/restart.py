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

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import output
        self.node(args).restart(args.name)
        output.out.print('%s restarted' % args.name)
        return 0
