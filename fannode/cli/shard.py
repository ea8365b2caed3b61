from __future__ import annotations

import argparse

from fannode.cli.base import Command


class ShardCommand(Command):
    """Show which instance of a service owns shard keys, as every client picks it:

        $ fannode shard Store 7 12
        7   → 3f2a1c9e8b7d  tcp://10.0.0.5:41233  pid 4121 on web-1
        12  → 9b0e44d1a2c3  tcp://10.0.0.6:40117  pid 977 on web-2

    A key is read as JSON when it parses (7 is the number, "7" or abc a string), as
    `fannode request` reads arguments, so it matches `{"store_id": 7}`.
    """

    help = 'Show which instance owns a shard key.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('service', metavar='SERVICE')
        parser.add_argument('keys', nargs='+', metavar='KEY', help='shard keys (JSON values, or plain text)')
        parser.add_argument('--json', action='store_true', help='print JSON')

    def run(self, args: argparse.Namespace) -> int:
        import json

        from fannode.cli import cluster, output
        from fannode.cli.exitcodes import UNAVAILABLE
        from fannode.core.shards import instances_by_rank
        from fannode.exceptions import UnknownService

        instances = cluster.registry(args).lookup(args.service)
        if not instances:
            raise UnknownService("no instance of service '%s' is registered" % args.service)
        rows = []
        for text in args.keys:
            try:
                key = json.loads(text)
            except ValueError:
                key = text
            ranked = instances_by_rank(key, instances)
            rows.append({'key': key, 'instance': ranked[0].to_dict() if ranked else None,
                         'next': ranked[1].id if len(ranked) > 1 else None})
        if args.json:
            output.print_json(rows)
            return 0 if all(r['instance'] for r in rows) else UNAVAILABLE
        width = max(len(json.dumps(r['key'])) for r in rows)
        for row in rows:
            i = row['instance']
            if i is None:
                output.out.print('%-*s  → no ready instance of %s' % (width, json.dumps(row['key']), args.service),
                                 highlight=False)
            else:
                output.out.print('%-*s  → %s  %s  pid %s on %s' % (width, json.dumps(row['key']), i['id'][:12],
                                                                 i['endpoint'], i['pid'], i['host']), highlight=False)
        return 0 if all(r['instance'] for r in rows) else UNAVAILABLE
