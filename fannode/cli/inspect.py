from __future__ import annotations

import argparse

from fannode.cli.base import Command


class InspectCommand(Command):
    """Describe the RPC interface of a service: its methods, signatures and docs."""

    help = 'Describe the RPC interface of a service.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('service', metavar='SERVICE')
        parser.add_argument('--builtins', action='store_true',
                            help='also list the built-in methods (ping, status, ...)')
        parser.add_argument('--json', action='store_true', help='print JSON')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import cluster, output

        described = cluster.client(args).call_retrying(args.service, 'inspect', {})
        methods = [m for m in described.get(args.service, []) if args.builtins or not m['builtin']]
        if args.json:
            output.print_json(methods)
            return 0
        output.out.print('[bold]%s[/]' % args.service)
        for m in methods:
            doc = m['doc'].splitlines()[0] if m['doc'] else ''
            output.out.print('  [cyan]%s.%s[/]%s  [dim]%s[/]' % (args.service, m['name'], m['signature'], doc))
        if not methods:
            output.out.print('  [dim](no RPC methods)[/]')
        return 0
