from __future__ import annotations

import argparse
import os
from typing import Any

from fannode.cli.base import Command


class UpCommand(Command):
    """Run the whole cluster node.yml describes, on this machine, until Ctrl-C.

    Starts the hub (unless node.yml points at ZooKeeper/RabbitMQ), then each instance
    block in the order its depends_on gives, each when what it depends on is ready;
    restarts what dies; applies edits of node.yml as they are saved. Ctrl-C or SIGTERM
    stops everything gracefully (twice: at once).
    """

    help = 'Run the node: every instance in node.yml, restarted and scaled live.'
    uses_cluster = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--file', '-f', default='node.yml', metavar='FILE', help='the topology (default: ./node.yml)')
        parser.add_argument('--check', action='store_true', help='validate the file and exit: 0 if it is fine')
        parser.add_argument('--quiet', '-q', action='store_true', help="do not print the instances' output")

    def run(self, args: argparse.Namespace) -> int:
        import asyncio
        import logging

        from fannode.cli import output
        from fannode.exceptions import FannodeError
        from fannode.node import paths
        from fannode.node.lockfile import take_lock
        from fannode.node.output import Printer
        from fannode.node.topology import load

        if not os.path.exists(args.file):
            raise FannodeError('%s: no such file (run `fannode up` where node.yml is, or pass --file)' % args.file)
        topology = load(args.file)
        for line in disagreements(topology):
            output.err.print('[yellow]note:[/] ' + line)
        if args.check:
            blocks = ', '.join('%s ×%d' % (s.name, s.numprocesses) for s in topology.instances.values())
            output.out.print('%s is fine: %s' % (args.file, blocks or 'no instances'), markup=False)
            from fannode.node.servicedeps import describe
            for spec in topology.instances.values():  # the order service configs add to depends_on
                if spec.implied:
                    output.out.print(describe(spec.name, spec.implied), markup=False)
            return 0
        lock_path = paths.node_path(args.file, 'lock')
        lock = take_lock(lock_path, args.file)
        logging.basicConfig(level=logging.WARNING, format='%(asctime)s %(levelname)s %(name)s %(message)s')
        # circus says "Could not bind" before the node says which socket, and why
        logging.getLogger('circus').addFilter(lambda r: not r.getMessage().startswith('Could not bind'))

        from fannode.node.supervisor import Node
        node = Node(topology, Printer(quiet=args.quiet))
        circus = (paths.node_path(args.file, 'circus'), paths.node_path(args.file, 'circus-pub'))
        endpoints = ('ipc://' + circus[0], 'ipc://' + circus[1])
        try:
            return asyncio.run(node.run(endpoints, paths.control_endpoint(args.file)))
        finally:
            for path in circus + (paths.node_path(args.file, 'control'), lock_path):
                if os.path.exists(path):
                    os.unlink(path)
            lock.close()


def disagreements(topology: Any) -> list[str]:
    """`$FANNODE_REGISTRY`/`$FANNODE_EVENTS` set to other than what the node runs: commands
    run in this shell would talk to another cluster than the node's (its processes get the
    node's values), so it is said at start. What a variable means is fannode.settings' to say
    (`FANNODE_EVENTS=hub` is the hub the registry names, not the default one)."""
    from rich.markup import escape

    from fannode.core.text import redacted, visible
    from fannode.settings import resolve_events_url, resolve_url
    meant = {'registry': lambda: resolve_url('registry', node_file=topology.path),
             'events': lambda: resolve_events_url(None, None, node_file=topology.path)}
    lines = []
    for kind, resolve in meant.items():
        name = 'FANNODE_' + kind.upper()
        value = os.environ.get(name, '').strip()
        used = getattr(topology, kind)
        if value and resolve() != used:
            lines.append(escape(visible('$%s is %s, but the node runs %s on %s (from %s); its processes '
                                        'get %s, commands you run in this shell use $%s' % (
                                            name, redacted(value), kind, redacted(used),
                                            os.path.basename(topology.path), redacted(used), name))))
    return lines

