from __future__ import annotations

import argparse

from fannode.cli.base import Command


class TraceCommand(Command):
    """Show the path of one request across the cluster: a tree of spans (service, method,
    event or HTTP route, instance, duration, status), each with its log lines, in order.

    ID is the trace id of an X-Trace-Id header, of `fannode request`/`emit`, or of a
    `tail` line (its first digits are enough when only one kept trace starts with them).
    Log hubs keep the last 20,000 traces.
    """

    help = "Show one request's path across the cluster, with its log lines."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('trace_id', metavar='ID')
        parser.add_argument('--json', action='store_true', help='the records as a JSON list')
        parser.add_argument('--wait', type=float, default=1.0, metavar='SECONDS',
                            help='how long to wait for the last spans to arrive (default: 1)')

    def run(self, args: argparse.Namespace) -> int:
        import time

        import gevent

        from fannode.cli import output
        from fannode.exceptions import FannodeError
        from fannode.logs.client import LogClient
        from fannode.logs.render import trace_tree
        from fannode.settings import resolve_url

        client = LogClient(resolve_url('registry', args.registry))
        # Records reach the hub within ~0.1 s of being written: a trace looked up right after
        # its request may still miss its last span. Ask again until nothing new comes.
        deadline = time.monotonic() + max(0.0, args.wait)
        records = client.trace(args.trace_id)
        while time.monotonic() < deadline:
            gevent.sleep(0.2)
            again = client.trace(args.trace_id)
            if records and len(again) == len(records):
                break
            records = again
        if not records:
            raise FannodeError('no records of trace %s (the log hubs keep the last 20,000 traces)' % args.trace_id)
        if args.json:
            output.print_json(records)
        else:
            output.out.print(trace_tree(records[0]['trace'], records))
        return 0
