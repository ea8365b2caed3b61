"""`fannode reload`: have the running node apply node.yml now."""
from __future__ import annotations

import argparse

from fannode.cli.nodefile import NodeCommand


class ReloadCommand(NodeCommand):
    """Re-read node.yml now and apply the difference (the node also does it on save)."""

    help = 'Apply node.yml changes now.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('--json', action='store_true', help='print {"applied": [...], "ignored": [...]}')

    def run(self, args: argparse.Namespace) -> int:
        from rich.markup import escape

        from fannode.cli import output
        from fannode.exceptions import ConfigError
        done = self.node(args).reload()
        if done.get('error'):
            raise ConfigError(done['error'] + '; the node keeps running the previous topology')
        if args.json:
            output.print_json({'applied': done['applied'], 'ignored': done.get('ignored', [])})
            return 0
        for line in done['applied'] or ['no changes']:
            output.out.print(escape(line))
        for reason in done.get('ignored', []):
            output.err.print('[yellow]not applied:[/] %s (restart `fannode up`)' % escape(reason))
        return 0
