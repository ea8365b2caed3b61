from __future__ import annotations

import argparse

from fannode.cli.base import Command


class RequestCommand(Command):
    """Call one RPC method and print the reply:

        fannode request Greeting.greet '{"name": "Joe"}'
        echo '{"name": "Joe"}' | fannode request Greeting.greet -

    Text replies print as they are, anything else as JSON. Errors (unknown service or
    method, bad arguments, a remote exception, a timeout) print one line and exit 1.
    """

    help = 'Send a request message to some service and output the reply.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('subject', metavar='Service.method')
        parser.add_argument('body', nargs='?', default='{}', metavar='JSON',
                            help="keyword arguments as a JSON object; '-' reads stdin (default: {})")
        parser.add_argument('--timeout', '-t', type=float, default=3.0, metavar='SECONDS',
                            help='how long to wait for the reply (default: 3)')
        parser.add_argument('--trace-id', metavar='ID', help='trace id to send (default: a new one)')
        parser.add_argument('--json', action='store_true', help='print the reply as JSON')

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
        if args.timeout <= 0:
            raise UsageError('--timeout must be positive')
        if args.trace_id:
            trace.set_id(args.trace_id)
        reply = cluster.client(args, args.timeout).call_retrying(service, method, body)
        (output.print_json if args.json else output.print_value)(reply)
        return 0
