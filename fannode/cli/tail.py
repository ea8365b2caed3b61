from __future__ import annotations

import argparse

from fannode.cli.base import Command

LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL']


class TailCommand(Command):
    """Follow the log lines of the whole cluster, as instances come and go.

    Every line carries the service, the instance, the level and the trace id of the work
    that wrote it (the 8 digits in brackets; `fannode trace ID` shows that request's whole
    path). It starts with the last --lines lines the log hub kept.

        fannode tail                      # everything
        fannode tail Greeting Listen -l WARNING
        fannode tail --trace 3f2a9c1e     # one request
    """

    help = 'Follow the logs of the cluster (or of some services).'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('services', nargs='*', metavar='SERVICE',
                            help='only these services (case does not matter; default: all)')
        parser.add_argument('--level', '-l', type=str.upper, choices=LEVELS, metavar='LEVEL',
                            help='least level shown: DEBUG, INFO, WARNING, ERROR (default: all)')
        parser.add_argument('--trace', metavar='ID', help='only lines of this trace id (or its first digits)')
        parser.add_argument('--spans', action='store_true', help='also a line per finished span')
        parser.add_argument('--lines', '-n', type=int, default=20, metavar='N',
                            help='lines of history to start with (default: 20)')
        parser.add_argument('--no-follow', action='store_true', help='print the history and exit')
        parser.add_argument('--json', action='store_true', help='one JSON record per line')

    def run(self, args: argparse.Namespace) -> int:
        import signal
        import sys

        import gevent
        import gevent.event

        from fannode.cli import output
        from fannode.exceptions import UsageError
        from fannode.logs.client import LogClient
        from fannode.logs.render import LineFormat
        from fannode.settings import resolve_url

        if args.lines < 0:
            raise UsageError('--lines must be 0 or more, got %d' % args.lines)
        form = LineFormat(output.out)
        lines: list[str] = []

        def show(record: dict) -> None:
            lines.append(output.to_json(record) if args.json else form.line(record))
            if len(lines) == 1:  # one write per batch of records, at the end of this loop turn
                gevent.get_hub().loop.run_callback(flush)

        def flush() -> None:
            try:
                sys.stdout.write('\n'.join(lines) + '\n')
                sys.stdout.flush()
            except BrokenPipeError:  # `fannode tail | head`: the reader is gone
                stop.set()
            lines.clear()

        stop = gevent.event.Event()
        client = LogClient(resolve_url('registry', args.registry))
        if args.no_follow:
            for record in client.recent(args.services, args.level or '', args.trace or '', args.spans, args.lines):
                show(record)
            gevent.sleep(0)  # the callback that writes them
            return 0
        follow = client.follow(show, args.services, args.level or '', args.trace or '', args.spans, args.lines)
        if not args.json:
            output.err.print('[dim]following %s (Ctrl-C to stop)[/]' % (', '.join(args.services) or 'all services'))
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, stop.set)
        stop.wait()
        follow.stop()
        return 0
