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
        parser.add_argument('--file', '-f', metavar='FILE',
                            help='the topology: node.yml, or a Procfile (default: ./node.yml, else ./Procfile)')
        parser.add_argument('--env-file', action='append', default=[], metavar='FILE',
                            help='variables for every process and for ${VAR} in the file, after ./.env (repeatable)')
        parser.add_argument('--show-env', metavar='BLOCK',
                            help="with --check: print the environment BLOCK's processes get, and where each variable is from")
        parser.add_argument('--reveal', action='store_true', help='with --show-env: print secrets too')
        parser.add_argument('--check', action='store_true', help='validate the file and exit: 0 if it is fine')
        parser.add_argument('--json', action='store_true', help='with --check: print {"file", "ok", "blocks"} (with --show-env: the variables)')
        parser.add_argument('--quiet', '-q', action='store_true', help="do not print the instances' output")
        parser.add_argument('--no-tui', action='store_true',
                            help='print lines, never the dashboard (the default when stdout is no terminal, or $CI is set)')
        parser.add_argument('--reload', action='store_true',
                            help='restart the blocks that run Python when their sources change (node.yml `reload:` per block)')
        parser.add_argument('--detach', '-D', action='store_true',
                            help='run the node in the background, its output to a log file; back once it answers')

    def run(self, args: argparse.Namespace) -> int:
        import asyncio
        import logging

        from fannode.cli import output
        from fannode.cli.nodefile import default_file
        from fannode.exceptions import FannodeError
        from fannode.node import paths
        from fannode.node.lockfile import take_lock
        from fannode.node.output import Printer
        from fannode.node.topology import load

        from fannode.node import envfiles
        if args.file is None:  # foreman's habit: a directory with only a Procfile runs it
            args.file = default_file()
        if not os.path.exists(args.file):
            raise FannodeError('%s: no such file (run `fannode up` where node.yml or a Procfile is, or pass '
                               '--file)' % args.file)
        envfiles.use(args.env_file)  # read again with node.yml on every edit
        topology = load(args.file)
        if args.show_env:
            from fannode.cli.showenv import show_env
            return show_env(topology, args.show_env, args.reveal, args.json)
        for line in disagreements(topology):
            output.err.print('[yellow]note:[/] ' + line)
        if args.check and args.json:
            output.print_json({'file': args.file, 'ok': True, 'blocks': [
                {'name': s.name, 'numprocesses': s.numprocesses, 'after': list(s.after)}
                for s in topology.instances.values()]})
            return 0
        if args.check:
            blocks = ', '.join('%s ×%d' % (s.name, s.numprocesses) for s in topology.instances.values())
            output.out.print('%s is fine: %s' % (args.file, blocks or 'no instances'), markup=False)
            from fannode.node.servicedeps import describe
            for spec in topology.instances.values():  # the order service configs add to depends_on
                if spec.implied:
                    output.out.print(describe(spec.name, spec.implied), markup=False)
            return 0
        if args.detach:  # fannode.node.detach: this command returns once the node answers
            from fannode.node import detach
            code = detach.start(args.file, topology.logs)
            if code is not None:
                return code
        lock_path = paths.node_path(args.file, 'lock')
        lock = take_lock(lock_path, args.file)
        if args.detach:  # the detached node's pidfile, now that no other node can run
            detach.holds_lock()
        logging.basicConfig(level=logging.WARNING, format='%(asctime)s %(levelname)s %(name)s %(message)s')
        # circus says "Could not bind" before the node says which socket, and why
        logging.getLogger('circus').addFilter(lambda r: not r.getMessage().startswith('Could not bind'))

        from fannode.node.supervisor import Node
        node = Node(topology, Printer(quiet=args.quiet))
        node.reload_all = args.reload
        circus = (paths.node_path(args.file, 'circus'), paths.node_path(args.file, 'circus-pub'))
        endpoints = ('ipc://' + circus[0], 'ipc://' + circus[1])
        try:
            if wants_dashboard(args):  # the node in a thread, the dashboard in this one
                from fannode.tui import nodeapp
                return nodeapp.run(node, endpoints, paths.control_endpoint(args.file))
            return asyncio.run(node.run(endpoints, paths.control_endpoint(args.file)))
        finally:
            for path in circus + (paths.node_path(args.file, 'control'), lock_path):
                if os.path.exists(path):
                    os.unlink(path)
            lock.close()


def wants_dashboard(args: argparse.Namespace) -> bool:
    """The dashboard in a terminal; lines (as ever, byte for byte) anywhere else."""
    import sys
    if args.no_tui or os.environ.get('CI') or os.environ.get('TERM', '') in ('', 'dumb'):
        return False
    return all(f is not None and f.isatty() for f in (sys.stdin, sys.stdout, sys.stderr))  # Textual draws on stderr


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

