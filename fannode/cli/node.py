"""`fannode ps`, `scale`, `restart`, `reload`: talk to the node running ./node.yml."""
from __future__ import annotations

import argparse

from fannode.cli.base import Command


class NodeCommand(Command):
    uses_cluster = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--file', '-f', default='node.yml', metavar='FILE',
                            help='the node.yml the node runs (default: ./node.yml)')

    def call(self, args: argparse.Namespace, method: str, **body):
        from fannode.node import control, paths
        return control.call(paths.control_endpoint(args.file), method, timeout=30.0, **body)


class PsCommand(NodeCommand):
    """Show the node's instance blocks and their processes."""

    help = "Show the node's processes."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('--json', action='store_true', help='print JSON')

    def run(self, args: argparse.Namespace) -> int:
        from rich.table import Table

        from fannode.cli import output
        status = self.call(args, 'ps')
        if args.json:
            output.print_json(status)
            return 0
        colors = {'ready': 'green', 'starting': 'yellow', 'backoff': 'yellow', 'failed': 'bold red'}
        table = Table('block', 'state', 'ready', 'pids', 'restarts', 'last exit', box=None)
        for b in status['blocks']:
            state = '[%s]%s[/]' % (colors.get(b['state'], 'dim'), b['state'])
            pids = ' '.join('%d:%d' % (p['index'], p['pid']) for p in b['processes'])
            table.add_row(b['name'], state, '%d/%d' % (b['ready'], b['desired']), pids or '-',
                          str(b['restarts']), b['failed'] or b['last_exit'] or '-')
        output.out.print(table)
        return 0


class ScaleCommand(NodeCommand):
    """Set how many processes an instance block runs, until node.yml changes it."""

    help = 'Scale an instance block: fannode scale greeting 5'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('name', help='the instance block in node.yml')
        parser.add_argument('count', type=int, help='processes to run')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import output
        done = self.call(args, 'scale', name=args.name, count=args.count)
        output.out.print('%s: %d → %d processes' % (done['name'], done['before'], done['count']))
        return 0


class RestartCommand(NodeCommand):
    """Stop an instance block's processes gracefully and start them again."""

    help = 'Restart an instance block.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('name', help='the instance block in node.yml')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import output
        self.call(args, 'restart', name=args.name)
        output.out.print('%s restarted' % args.name)
        return 0


class ReloadCommand(NodeCommand):
    """Re-read node.yml now and apply the difference (the node also does it on save)."""

    help = 'Apply node.yml changes now.'

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import output
        from fannode.exceptions import ConfigError
        done = self.call(args, 'reload')
        if done.get('error'):
            raise ConfigError(done['error'] + '; the node keeps running the previous topology')
        for line in done['applied'] or ['no changes']:
            output.out.print(line)
        for reason in done.get('ignored', []):
            output.err.print('[yellow]not applied:[/] %s (restart `fannode up`)' % reason)
        return 0
