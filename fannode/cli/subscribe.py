from __future__ import annotations

import argparse

from fannode.cli.base import Command


class SubscribeCommand(Command):
    """Print events as they arrive, until Ctrl-C:

        fannode subscribe greeted 'order.*' 'audit.#'

    `*` matches one word of the event type, `#` any number. The subscription has a queue
    of its own that goes away when the command exits, so it never takes events from
    the services that handle them.
    """

    help = 'Print events of the given types as they arrive.'
    uses_events = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('patterns', nargs='+', metavar='PATTERN')
        parser.add_argument('--json', action='store_true', help='one JSON object per line')

    def run(self, args: argparse.Namespace) -> int:
        import signal
        import uuid

        import gevent
        import gevent.event
        from rich.markup import escape

        from fannode.cli import output
        from fannode.core.events import Event, check_pattern
        from fannode.events import get_events
        from fannode.settings import resolve_events_url

        for pattern in args.patterns:
            check_pattern(pattern)

        def show(event: Event) -> None:
            if args.json:
                output.print_json(event.to_dict())
            else:
                output.out.print('[bold]%s[/] %s [dim]%s trace=%s[/]' % (
                    event.type, escape(output.to_json(event.body)), escape(event.source), event.trace_id))

        events = get_events(resolve_events_url(args.events, args.registry))
        events.check()
        events.subscribe('subscribe.' + uuid.uuid4().hex[:12], args.patterns, show, durable=False,
                         exclusive=True, sequential=True)
        output.err.print('listening for %s (Ctrl-C to stop)' % ', '.join(args.patterns))
        stop = gevent.event.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, stop.set)
        stop.wait()
        events.close(timeout=1.0)
        return 0
