from __future__ import annotations

import argparse
from typing import Any

from fannode.cli.base import Command


class RouteCommand(Command):
    """Which version of a service unpinned calls go to (docs/versions.md):

        fannode route Greeting 2          unpinned calls go to 2.x from now on
        fannode route Greeting            the route and the versions live
        fannode route Greeting --clear    back to the newest version
        fannode route                     every service that has versions

    The route is kept in the cluster's shared config (`fannode.route.Greeting`) and every
    client follows it within a second. A route no instance matches is refused (exit 3)
    unless --force. Pinned calls (`Greeting@1`, `version=`) ignore it.
    """

    help = 'Show or set which version of a service unpinned calls go to.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('service', nargs='?', metavar='SERVICE', help='the service (none: every one with versions)')
        parser.add_argument('version', nargs='?', metavar='VERSION', help='a version or range: 2, 2.0.0, ^1.4, >=2')
        parser.add_argument('--clear', action='store_true', help='remove the route: calls go to the newest version')
        parser.add_argument('--force', action='store_true', help='set a route no instance matches yet')
        parser.add_argument('--json', action='store_true', help='print JSON')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import cluster
        from fannode.core.keys import check_key
        from fannode.core.versions import Pin, route_key
        from fannode.exceptions import UsageError
        from fannode.settings import resolve_url
        from fannode.sharedconfig import get_shared_config

        if args.clear and args.version is not None:
            raise UsageError('--clear removes the route: give no VERSION with it')
        if (args.clear or args.force) and args.service is None:
            raise UsageError('--%s needs a SERVICE' % ('clear' if args.clear else 'force'))
        if args.service is not None:
            check_key(route_key(args.service))  # a name the key cannot hold: exit 2 before connecting
        wanted = Pin(args.version) if args.version is not None else None  # a bad range: exit 2 here too
        registry = cluster.registry(args)
        config = get_shared_config(resolve_url('registry', args.registry))
        try:
            if args.service is None:
                return show_all(registry, config, args.json)
            instances = registry.lookup(args.service)
            if wanted is not None:
                refuse_unmatched(args.service, wanted, instances, args.force)
                config.set(route_key(args.service), wanted.text)
            elif args.clear:
                config.delete(route_key(args.service))
            show([describe(args.service, instances, config)], args.json, single=True)
            return 0
        finally:
            config.close()  # the registry is left open, as other commands do: closing it logs its watches ending


def describe(service: str, instances: list, config: Any) -> dict[str, Any]:
    from fannode.calls.routes import describe
    from fannode.core.versions import route_key
    route = config.get(route_key(service))
    return describe(service, instances, route if isinstance(route, str) else None)


def refuse_unmatched(service: str, wanted: Any, instances: list, force: bool) -> None:
    """A route matching no registered instance is most likely a typo: refused, naming the
    versions there are, unless forced (a version about to be started)."""
    from fannode.core.versions import existing
    from fannode.exceptions import UnknownService, UnknownVersion
    if force or any(wanted.matches(i.version) for i in instances):
        return
    if not instances:
        raise UnknownService('no instance of %s is registered (--force sets the route anyway)' % service)
    raise UnknownVersion('no instance of %s matches version %s: there are %s (--force sets the route anyway)'
                         % (service, wanted.text, existing(instances)))


def show_all(registry: Any, config: Any, as_json: bool) -> int:
    from fannode.core.versions import version_of
    rows = [describe(name, instances, config) for name, instances in sorted(registry.services().items())
            if not name.startswith('fannode.') and any(version_of(i) for i in instances)]
    if not rows and not as_json:
        from fannode.cli import output
        output.err.print('no service has versions (a service config\'s version: sets one)')
        return 0
    show(rows, as_json)
    return 0


def show(rows: list[dict[str, Any]], as_json: bool, single: bool = False) -> None:
    from fannode.cli import output
    if as_json:
        output.print_json(rows[0] if single else rows)
        return
    for row in rows:
        output.out.print(line(row), markup=False)


def line(row: dict[str, Any]) -> str:
    """'Greeting: unpinned calls go to 2.0.0 (route 2); live 2.0.0 ×1, 1.0.0 ×2'."""
    live = ', '.join('%s ×%d' % (v or '(none)', n) for v, n in row['versions'].items())
    if not row['instances']:
        return '%s: no instance registered%s' % (row['service'], '; route %s' % row['route'] if row['route'] else '')
    reached = ', '.join(v or '(none)' for v in row['current'])
    if len(row['versions']) == 1:
        why = 'every instance: %s' % ('one version live' if list(row['versions']) != [''] else 'none has a version')
        why += '; route %s' % row['route'] if row['route'] else ''
        return '%s: unpinned calls go to %s; live %s' % (row['service'], why, live)
    if not row['current']:
        why = 'nothing: no instance is ready'
    elif row['route'] is None:
        why = '%s (newest; no route)' % reached
    elif any(_matches(row['route'], v) for v in row['current']):
        why = '%s (route %s)' % (reached, row['route'])
    else:
        why = '%s (newest: no ready instance matches the route %s)' % (reached, row['route'])
    return '%s: unpinned calls go to %s; live %s' % (row['service'], why, live)


def _matches(route: str, version: str) -> bool:
    from fannode.calls.routes import parse_route
    pin = parse_route(route)
    return pin is not None and pin.matches(version)
