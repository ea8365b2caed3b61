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
        from fannode.tui.cells import STATE_STYLES
        status = self.node(args).ps()
        if args.json:
            output.print_json(status)
            return 0
        table = Table('block', 'state', 'ready', 'pids', 'restarts', 'last exit', box=None)
        for b in status['blocks']:
            state = '[%s]%s[/]' % (STATE_STYLES.get(b['state'], 'dim'), b['state'])
            # a rollout's new processes are marked: index:pid+
            pids = ' '.join('%d:%d%s' % (p['index'], p['pid'], '+' if p.get('next') else '') for p in b['processes'])
            # what the node says may quote node.yml (`command not found: ...`): text, not markup
            table.add_row(escape(visible(b['name'])), state, '%d/%d' % (b['ready'], b['desired']), pids or '-',
                          str(b['restarts']), escape(visible(b['failed'] or b['last_exit'] or '-')))
        output.out.print(table)
        for b in status['blocks']:  # which mechanism enforces `limits:` (fannode.node.limitwatch)
            limits = b.get('limits')
            if limits:
                output.out.print(escape(visible(limits_line(b['name'], limits))), highlight=False)
        return 0


def limits_line(name: str, limits: dict) -> str:
    """`api limits: memory 256 MiB, nofile 4096 (rlimit+watchdog; cpu not enforced)`"""
    shown = ['%s %s' % (key, '%g MiB' % round(value / (1 << 20), 1) if key == 'memory' else value)
             for key, value in limits.items() if key in ('memory', 'cpu', 'pids', 'nofile')]
    how = limits.get('mechanism', '?') + ''.join('; %s not enforced' % k for k in limits.get('not_enforced', ()))
    return '%s limits: %s (%s)' % (name, ', '.join(shown), how)
