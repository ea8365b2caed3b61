from __future__ import annotations

import argparse

from fannode.cli.base import Command


class HubCommand(Command):
    """Run the embedded hub: service discovery for one machine, no ZooKeeper needed.

    It listens where the registry URL points (--registry, $FANNODE_REGISTRY, registry: in
    ./node.yml, or hub://127.0.0.1:4010). Instances re-register by themselves when a hub
    restarts.
    """

    help = 'Run the embedded hub (discovery for one machine).'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--loglevel', '-l', default='INFO', metavar='LEVEL', help='log level (default: INFO)')
        parser.add_argument('--journal', metavar='FILE',
                            help='where queued events are kept across restarts (default: '
                                 '$XDG_STATE_HOME/fannode/hub-HOST-PORT.sqlite3, ~/.local/state when unset)')
        parser.add_argument('--no-journal', action='store_true',
                            help='keep queued events in memory only: a restart loses them')
        parser.add_argument('--logs-only', action='store_true',
                            help='serve only as a log hub (for tail, trace, top) at --listen, registered '
                                 'in the --registry (any kind) as service fannode.logs; `fannode up` runs '
                                 'one on clusters without a hub')
        parser.add_argument('--listen', metavar='HOST:PORT', default='127.0.0.1:0',
                            help='with --logs-only: where to listen (default: 127.0.0.1 and a free port; '
                                 'give 0.0.0.0:PORT for other machines, as `fannode up` does)')

    def run(self, args: argparse.Namespace) -> int:
        from urllib.parse import urlsplit

        from fannode.core import logsetup
        from fannode.exceptions import UsageError
        from fannode.hub.client import DEFAULT_PORT
        from fannode.hub.serve import default_journal, run_hub, run_log_hub
        from fannode.settings import resolve_url

        url = resolve_url('registry', args.registry)
        if args.logs_only:
            host, sep, port = args.listen.rpartition(':')
            if not sep or not port.isdigit():
                raise UsageError('--listen: expected HOST:PORT, got %r' % args.listen)
            logsetup.setup(args.loglevel, 'logs')
            from fannode.discovery import get_registry
            run_log_hub(host or '127.0.0.1', int(port), get_registry(url))  # loopback unless told
            return 0
        parts = urlsplit(url)
        if parts.scheme != 'hub':
            raise UsageError('the registry is %s, not a hub:// URL; nothing for `fannode hub` to serve' % url)
        logsetup.setup(args.loglevel, 'hub')
        host, port = parts.hostname or '127.0.0.1', parts.port or DEFAULT_PORT
        run_hub(host, port, None if args.no_journal else args.journal or default_journal(host, port), url)
        return 0
