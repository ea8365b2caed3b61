from __future__ import annotations

import argparse

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
        import fcntl
        import logging
        import os

        from fannode.cli import output
        from fannode.exceptions import FannodeError
        from fannode.node import paths
        from fannode.node.output import Printer
        from fannode.node.topology import load

        if not os.path.exists(args.file):
            raise FannodeError('%s: no such file (run `fannode up` where node.yml is, or pass --file)' % args.file)
        topology = load(args.file)
        if args.check:
            blocks = ', '.join('%s ×%d' % (s.name, s.numprocesses) for s in topology.instances.values())
            output.out.print('%s is fine: %s' % (args.file, blocks or 'no instances'))
            return 0
        lock = open(paths.node_path(args.file, 'lock'), 'a+')
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise FannodeError('a node is already running for %s (pid %s)' % (
                os.path.abspath(args.file), lock.read().strip() or '?')) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
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
            for path in circus + (paths.node_path(args.file, 'control'), lock.name):
                if os.path.exists(path):
                    os.unlink(path)
