from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fannode.cli.base import Command

if TYPE_CHECKING:
    from fannode.core.instance import InstanceInfo


class DiscoverCommand(Command):
    """Show the services registered in discovery, with their instance counts (and how
    many of them are not ready: a hard dependency missing, see docs/resilience.md):

        Greeting [2]
        Orders [2, 1 not ready]
    """

    help = 'Show available services.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('services', nargs='*', metavar='SERVICE', help='only these services')
        parser.add_argument('--instances', '-i', action='store_true', help='list every instance')
        parser.add_argument('--all', '-a', action='store_true',
                            help="also fannode's own services (fannode.logs: the log hubs of the nodes)")
        parser.add_argument('--json', action='store_true', help='print JSON')

    def run(self, args: argparse.Namespace) -> int:
        import time

        from rich.table import Table

        from fannode.cli import cluster, output

        found = cluster.registry(args).services()
        if args.services:
            found = {name: found.get(name, []) for name in args.services}
        elif not args.all:
            found = {name: instances for name, instances in found.items() if not name.startswith('fannode.')}
        if args.json:
            output.print_json({name: [i.to_dict() for i in instances] for name, instances in found.items()})
            return 0
        if not found:
            output.err.print('no services registered')
            return 0
        if not args.instances:
            for name, instances in found.items():
                waiting = sum(not i.ready for i in instances)
                output.out.print('%s [%d%s]' % (name, len(instances), ', %d not ready' % waiting if waiting else ''),
                                 markup=False)
            return 0
        table = Table('service', 'instance', 'endpoint', 'pid', 'host', 'version', 'up', 'ready', box=None)
        now = time.time()
        for name, instances in found.items():
            for i in instances:
                table.add_row(name, i.id[:12], i.endpoint, str(i.pid), i.host, i.version or '-',
                              '%.0fs' % (now - i.started), _ready(i))
        output.out.print(table)
        return 0


def _ready(instance: InstanceInfo) -> str:
    """'yes', or 'no' with the hard dependencies it waits for."""
    from fannode.core.dependencies import missing_hard
    if instance.ready:
        return 'yes'
    waits = missing_hard(instance)
    return 'no (needs %s)' % ', '.join(waits) if waits else 'no'
