from __future__ import annotations

import argparse

from fannode.cli.base import Command
from fannode.exceptions import UsageError


class HelpCommand(Command):
    """Show help for fannode or for one command: `fannode help request`."""

    help = 'Display help information about fannode.'
    uses_cluster = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('topic', nargs='?', metavar='COMMAND', help='the command to explain')

    def run(self, args: argparse.Namespace) -> int:
        if args.topic is None:
            args.parser.print_help()
            return 0
        if args.topic not in args.commands:
            raise UsageError("no command '%s' (see `fannode list`)" % args.topic)
        args.parser.parse_args([args.topic, '--help'])
        return 0
