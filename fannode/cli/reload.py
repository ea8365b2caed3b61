"""`fannode reload`: have the running node apply node.yml now."""
from __future__ import annotations

import argparse

from fannode.cli.nodefile import NodeCommand


class ReloadCommand(NodeCommand):
    """Re-read node.yml now and apply the difference (the node also does it on save)."""

    help = 'Apply node.yml changes now.'

    def run(self, args: argparse.Namespace) -> int:
        from rich.markup import escape

        from fannode.cli import output
        from fannode.exceptions import ConfigError
        done = self.node(args).reload()
        if done.get('error'):
            raise ConfigError(done['error'] + '; the node keeps running the previous topology')
        for line in done['applied'] or ['no changes']:
            output.out.print(escape(line))
        for reason in done.get('ignored', []):
            output.err.print('[yellow]not applied:[/] %s (restart `fannode up`)' % escape(reason))
        return 0
