from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from fannode.cli.base import Command

if TYPE_CHECKING:
    from fannode.core.instance import InstanceInfo


class DiscoverCommand(Command):
    """Show the services registered in discovery, with their instance counts (and how
    many of them are not ready: a hard dependency missing, see docs/resilience.md), and
    the versions they run when they announce any (with the route, when one is set):

        Greeting [3]  1.4.2 ×2, 2.0.0 ×1  route 2
        Orders [2, 1 not ready]

    `--json` lists every instance by service; `--json --summary` prints one object per
    service: {instances, not_ready, versions: {version: count}, route, current}.
    """

    help = 'Show available services.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('services', nargs='*', metavar='SERVICE', help='only these services')
        parser.add_argument('--instances', '-i', action='store_true', help='list every instance')
        parser.add_argument('--all', '-a', action='store_true',
                            help="also fannode's own services (fannode.logs: the log hubs of the nodes)")
        parser.add_argument('--json', action='store_true', help='print JSON')
        parser.add_argument('--summary', action='store_true',
                            help='with --json: per service counts, versions and route instead of every instance')

    def run(self, args: argparse.Namespace) -> int:
        try:
            return self.show(args)
        finally:
            if getattr(args, '_routes', None) is not None:
                args._routes.close()

    def show(self, args: argparse.Namespace) -> int:
        import time

        from fannode.cli import cluster

        found = cluster.registry(args).services()
        if args.services:
            found = {name: found.get(name, []) for name in args.services}
        elif not args.all:
            found = {name: instances for name, instances in found.items() if not name.startswith('fannode.')}
        if args.json and args.summary:
            print_json({name: summary(name, instances, args) for name, instances in found.items()})
            return 0
        if args.json:
            print_json({name: [i.to_dict() for i in instances] for name, instances in found.items()})
            return 0
        from fannode.cli import output  # rich, for people only
        from fannode.cli.plaintable import print_table
        if not found:
            output.err.print('no services registered')
            return 0
        if not args.instances:
            for name, instances in found.items():
                waiting = sum(not i.ready for i in instances)
                output.out.print('%s [%d%s]%s' % (name, len(instances), ', %d not ready' % waiting if waiting else '',
                                                  versions(name, instances, args)), markup=False)
            return 0
        now = time.time()
        rows = [(name, i.id[:12], i.endpoint, str(i.pid), i.host, i.version or '-', '%.0fs' % (now - i.started),
                 _ready(i)) for name, instances in found.items() for i in instances]
        # rich's Table, drawn without rendering each cell through rich: 1,000 rows in ms
        print_table(output.out, ('service', 'instance', 'endpoint', 'pid', 'host', 'version', 'up', 'ready'), rows)
        return 0


def print_json(value: Any) -> None:
    """output.print_json without importing output, which imports rich (~40 ms of a 0.15 s
    command)."""
    import sys

    from fannode.core.jsonable import to_json
    sys.stdout.write(to_json(value) + '\n')
    sys.stdout.flush()


def routes(args: argparse.Namespace) -> Any:
    """The shared config the routes are read from, made once a command; None when the
    registry has none (a route is then unknown: discover still lists the services)."""
    if not hasattr(args, '_routes'):
        from fannode.settings import resolve_url
        from fannode.sharedconfig import get_shared_config
        try:
            args._routes = get_shared_config(resolve_url('registry', args.registry))
        except Exception:
            args._routes = None
    return args._routes


def route_of(name: str, instances: list, args: argparse.Namespace) -> str | None:
    """The route of a service that announces versions (no lookup for those that do not)."""
    from fannode.core.versions import route_key, version_of
    config = routes(args) if any(version_of(i) for i in instances) else None
    if config is None:
        return None
    try:
        route = config.get(route_key(name))
    except Exception:  # a name no key can hold, or the config unreachable: no route shown
        return None
    return route if isinstance(route, str) else None


def summary(name: str, instances: list, args: argparse.Namespace) -> dict[str, Any]:
    from fannode.calls.routes import describe
    row = describe(name, instances, route_of(name, instances, args))
    del row['service']
    return row


def versions(name: str, instances: list, args: argparse.Namespace) -> str:
    """'  1.4.2 ×2, 2.0.0 ×1  route 2'; '' when no instance announces a version."""
    from fannode.core.versions import existing, version_of
    if not any(version_of(i) for i in instances):
        return ''
    route = route_of(name, instances, args)
    return '  %s%s' % (existing(instances), '  route %s' % route if route else '')


def _ready(instance: InstanceInfo) -> str:
    """'yes', or 'no' with the hard dependencies it waits for."""
    if instance.ready:
        return 'yes'
    from fannode.core.dependencies import missing_hard
    waits = missing_hard(instance)
    return 'no (needs %s)' % ', '.join(waits) if waits else 'no'
