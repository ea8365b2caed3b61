from __future__ import annotations

import argparse

from fannode.cli.base import Command


class ListCommand(Command):
    """List the available commands, plugins' included."""

    help = 'List available commands.'
    uses_cluster = False

    def run(self, args: argparse.Namespace) -> int:
        width = max(len(name) for name in args.commands)
        for name, command in args.commands.items():
            print('%-*s  %s' % (width, name, command.help))
        return 0
