from __future__ import annotations

import argparse

from fannode.cli.base import Command


class EmitCommand(Command):
    """Publish one event:

        fannode emit greeted '{"name": "Joe"}'
        echo '{"name": "Joe"}' | fannode emit greeted -

    It exits once the broker has taken the event (exit 1 if it cannot be reached).
    With --ttl, an event no handler has started on that many seconds after it was
    emitted is dead-lettered ("ttl expired"), not run late.
    """

    help = 'Manually emit an event.'
    uses_events = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('type', metavar='TYPE', help="event type, e.g. 'greeted' or 'order.paid'")
        parser.add_argument('body', nargs='?', default='{}', metavar='JSON',
                            help="the body as a JSON object; '-' reads stdin (default: {})")
        parser.add_argument('--trace-id', metavar='ID', help='trace id to send (default: a new one)')
        parser.add_argument('--delay', type=float, default=0.0, metavar='SECONDS',
                            help='deliver no earlier than this many seconds from now')
        parser.add_argument('--ttl', type=float, default=None, metavar='SECONDS',
                            help='dead-letter the event if no handler starts on it within this many '
                                 'seconds of now (default: no limit)')
        parser.add_argument('--timeout', type=float, default=5.0, metavar='SECONDS',
                            help='how long to wait for the broker (default: 5)')
        parser.add_argument('--json', action='store_true', help='print {"type", "id", "trace_id"} on stdout')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import output
        from fannode.cli.base import json_body
        from fannode.core import trace
        from fannode.core.events import Event, check_body, check_type
        from fannode.events import get_events
        from fannode.exceptions import RegistryUnavailable, UsageError
        from fannode.settings import resolve_events_url

        check_type(args.type)
        body = check_body(args.type, json_body(args.body))
        if args.delay < 0:
            raise UsageError('--delay must not be negative')
        if args.ttl is not None and not 0 < args.ttl < float('inf'):  # NaN too
            raise UsageError('--ttl must be a number of seconds above 0, got %s' % args.ttl)
        if args.trace_id:
            trace.set_id(args.trace_id)
        url = resolve_events_url(args.events, args.registry)
        events = get_events(url)
        events.check()
        event = Event.new(args.type, body, trace.ensure_id(), 'cli', args.ttl)
        events.emit(event, args.delay)
        if not events.flush(args.timeout):
            raise RegistryUnavailable('the event broker at %s did not take the event within %gs'
                                      % (url, args.timeout))
        if args.json:
            output.print_json({'type': event.type, 'id': event.id, 'trace_id': event.trace_id})
        else:
            output.err.print('emitted %s %s (trace %s)' % (event.type, event.id, event.trace_id))
        return 0
