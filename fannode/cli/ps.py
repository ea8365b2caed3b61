"""`fannode ps`: the node's instance blocks and their processes."""
from __future__ import annotations

import argparse

from fannode.cli.nodefile import NodeCommand


class PsCommand(NodeCommand):
    """Show the node's instance blocks and their processes."""

    help = "Show the node's processes."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('--json', action='store_true', help='print JSON')

    def run(self, args: argparse.Namespace) -> int:
        from rich.markup import escape
        from rich.table import Table

        from fannode.cli import output
        from fannode.core.text import visible
        status = self.node(args).ps()
        if args.json:
            output.print_json(status)
            return 0
        colors = {'ready': 'green', 'starting': 'yellow', 'backoff': 'yellow', 'failed': 'bold red'}
        table = Table('block', 'state', 'ready', 'pids', 'restarts', 'last exit', box=None)
        for b in status['blocks']:
            state = '[%s]%s[/]' % (colors.get(b['state'], 'dim'), b['state'])
            pids = ' '.join('%d:%d' % (p['index'], p['pid']) for p in b['processes'])
            # what the node says may quote node.yml (`command not found: ...`): text, not markup
            table.add_row(escape(visible(b['name'])), state, '%d/%d' % (b['ready'], b['desired']), pids or '-',
                          str(b['restarts']), escape(visible(b['failed'] or b['last_exit'] or '-')))
        output.out.print(table)
        return 0
