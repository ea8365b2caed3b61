from __future__ import annotations

import argparse

from fannode.cli.base import Command


class ListCommand(Command):
    """List the available commands, plugins' included."""

    help = 'List available commands.'
    uses_cluster = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--json', action='store_true', help='print [{"name", "help"}]')

    def run(self, args: argparse.Namespace) -> int:
        if args.json:
            from fannode.cli import output
            output.print_json([{'name': name, 'help': command.help} for name, command in args.commands.items()])
            return 0
        width = max(len(name) for name in args.commands)
        for name, command in args.commands.items():
            print('%-*s  %s' % (width, name, command.help))
        return 0
