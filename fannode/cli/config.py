from __future__ import annotations

import argparse

from fannode.cli.base import Command


class ConfigCommand(Command):
    """Print a config file as fannode reads it: ${VAR:-default} references resolved."""

    help = 'Print a config file with environment references resolved.'
    uses_cluster = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('file', metavar='FILE')
        parser.add_argument('--json', action='store_true', help='print JSON')

    def run(self, args: argparse.Namespace) -> int:
        import yaml

        from fannode.cli import output
        from fannode.core.config import load_config

        data = load_config(args.file).to_dict()
        if args.json:
            output.print_json(data)
        else:
            print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end='')
        return 0
