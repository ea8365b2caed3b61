from __future__ import annotations

import argparse

from fannode.cli.base import Command


class RequestCommand(Command):
    """Call one RPC method and print the reply:

        fannode request Greeting.greet '{"name": "Joe"}'
        echo '{"name": "Joe"}' | fannode request Greeting.greet -

    Text replies print as they are, anything else as JSON. Errors (unknown service or
    method, bad arguments, a remote exception, a timeout) print one line and exit 1.
    --timeout is also the deadline the request carries: the service and every call it
    makes for it get only what is left of it.
    """

    help = 'Send a request message to some service and output the reply.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('subject', metavar='Service.method')
        parser.add_argument('body', nargs='?', default='{}', metavar='JSON',
                            help="keyword arguments as a JSON object; '-' reads stdin (default: {})")
        parser.add_argument('--timeout', '-t', type=float, default=3.0, metavar='SECONDS',
                            help='how long to wait for the reply, and the deadline the request '
                                 'carries (default: 3)')
        parser.add_argument('--trace-id', metavar='ID', help='trace id to send (default: a new one)')
        parser.add_argument('--json', action='store_true', help='print the reply as JSON')
        parser.add_argument('--show-instance', action='store_true',
                            help='also say which instance answered (on stderr; with --json, '
                                 'print {"reply": ..., "instance": {...}})')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import cluster, output
        from fannode.cli.base import json_body
        from fannode.core import trace
        from fannode.exceptions import UsageError

        service, method = cluster.split_subject(args.subject)
        body = json_body(args.body)
        if not isinstance(body, dict):
            raise UsageError('the body must be a JSON object of keyword arguments, got %s'
                             % type(body).__name__)
        if not 0 < args.timeout < float('inf'):  # NaN too
            raise UsageError('--timeout must be a number of seconds above 0, got %s' % args.timeout)
        if args.trace_id:
            trace.set_id(args.trace_id)
        client = cluster.client(args, args.timeout)
        sent: list = []
        reply = client.call_retrying(service, method, body, sent=sent)
        if not args.show_instance:
            (output.print_json if args.json else output.print_value)(reply)
            return 0
        endpoint = sent[-1].endpoint
        found = [i for i in client.registry.lookup(service) if i.endpoint == endpoint]
        instance = found[0].to_dict() if found else {'endpoint': endpoint}
        if args.json:
            output.print_json({'reply': reply, 'instance': instance})
            return 0
        output.print_value(reply)
        output.err.print('answered by %s at %s%s' % (
            instance.get('id', '?')[:12], endpoint,
            ' (pid %s on %s)' % (instance['pid'], instance['host']) if found else ''), highlight=False)
        return 0
