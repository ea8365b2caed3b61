from __future__ import annotations

import argparse
import re
import time
from typing import Any

from fannode.cli.base import Command

# --address: one instance's RPC endpoint, as `fannode discover` shows it.
ADDRESS = re.compile(r'tcp://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})')
MAX_BODY_FILE = 64 * 1024 * 1024  # a body file is read whole: refuse what no message may carry
MAX_CONCURRENCY = 10000  # greenlets of one process; more measures the client, not the service


class RequestCommand(Command):
    """Call one RPC method and print the reply:

        fannode request Greeting.greet '{"name": "Joe"}'
        echo '{"name": "Joe"}' | fannode request Greeting.greet -
        fannode request Greeting.greet @body.json --header user=ann --dump-headers
        fannode request Greeting.whoami --address tcp://127.0.0.1:5001
        fannode request Greeting.greet '{"name": "Joe"}' -N 2000 -C 20

    Text replies print as they are, anything else as JSON. Errors print one line; the
    exit status says which kind: 0 ok, 1 the method raised (remote error), 2 usage (bad
    arguments here, or the service refused them: unknown method, bad arguments),
    3 unavailable (no instance, unknown service, circuit open, unreachable registry or
    --address), 4 timeout (no reply in time, deadline exceeded).
    --timeout is also the deadline the request carries: the service and every call it
    makes for it get only what is left of it.
    """

    help = 'Send a request message to some service and output the reply.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('subject', metavar='Service.method')
        parser.add_argument('body', nargs='?', default='{}', metavar='JSON',
                            help="keyword arguments as a JSON object; '-' reads stdin, @FILE a file "
                                 "(default: {})")
        parser.add_argument('--timeout', '-t', type=float, default=3.0, metavar='SECONDS',
                            help='how long to wait for the reply, and the deadline the request '
                                 'carries (default: 3)')
        parser.add_argument('--trace-id', metavar='ID', help='trace id to send (default: a new one)')
        parser.add_argument('--address', metavar='tcp://HOST:PORT',
                            help='call exactly this instance, bypassing discovery')
        parser.add_argument('--header', '-H', action='append', default=[], metavar='KEY=VALUE',
                            help='a request header the handler reads with fannode.headers() '
                                 '(repeatable)')
        parser.add_argument('--dump-headers', action='store_true',
                            help='print what was sent and who answered, how fast, on stderr')
        parser.add_argument('--json', action='store_true',
                            help='machine output: {"reply", "instance", "duration_ms", "trace_id"} '
                                 '(with -N: the summary)')
        parser.add_argument('--show-instance', action='store_true',
                            help='also say which instance answered (on stderr; --json always says it)')
        parser.add_argument('-N', '--count', type=int, metavar='COUNT',
                            help='a load run: make the call COUNT times, then print a latency summary')
        parser.add_argument('-C', '--concurrency', type=int, default=1, metavar='N',
                            help='calls in flight at once in a load run (default: 1)')

    def exit_code(self, exc: BaseException) -> int:
        return exit_code(exc)

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import cluster
        from fannode.core import current, trace
        from fannode.exceptions import UsageError

        from fannode.core.versions import split_versioned
        service, method = cluster.split_subject(args.subject)
        service, args.version = split_versioned(service)  # Greeting@^1.2.greet: a pinned call
        if args.version and args.address:
            raise UsageError('--address calls one given instance: a version (@%s) has no say there' % args.version)
        body = read_body(args.body)
        if not isinstance(body, dict):
            raise UsageError('the body must be a JSON object of keyword arguments, got %s'
                             % type(body).__name__)
        if not 0 < args.timeout < float('inf'):  # NaN too
            raise UsageError('--timeout must be a number of seconds above 0, got %s' % args.timeout)
        if args.count is not None and args.count < 1:
            raise UsageError('-N must be a count of calls above 0, got %d' % args.count)
        if not 1 <= args.concurrency <= MAX_CONCURRENCY:
            raise UsageError('-C must be 1 to %d, got %d' % (MAX_CONCURRENCY, args.concurrency))
        if args.address is not None:
            check_address(args.address)
        headers = parse_headers(args.header)
        if headers:
            current.outgoing.set({current.USER_HEADERS: headers})  # the client sends them
        if args.trace_id:
            trace.set_id(args.trace_id)
        caller = Caller(args, service, method, body)
        if args.count is not None:
            return load_run(args, caller)
        trace_id = trace.ensure_id()
        started = time.perf_counter()
        try:
            reply = caller.call()
        except Exception as e:
            if args.dump_headers:
                dump(caller, headers, trace_id, time.perf_counter() - started, 'error: ' + type(e).__name__)
            raise
        duration = time.perf_counter() - started
        if args.dump_headers:
            dump(caller, headers, trace_id, duration, 'reply: ' + type(reply).__name__)
        show(args, caller, reply, duration, trace_id)
        return 0


class Caller:
    """One call to the subject, the same way every time: through discovery, or to the
    --address (one connection kept for all the calls of a load run)."""

    def __init__(self, args: argparse.Namespace, service: str, method: str, body: dict):
        from fannode.cli import cluster
        self.service, self.method, self.body = service, method, body
        self.subject = '%s.%s' % (service, method)
        self.timeout = args.timeout
        self.version = args.version
        self.address = args.address
        self.endpoint = args.address or ''
        self.client: Any = None
        self.connection: Any = None
        if self.address is None:
            self.client = cluster.client(args, args.timeout)

    def call(self) -> Any:
        if self.client is not None:
            from fannode.calls.options import pinned
            sent: list = []
            try:
                with pinned(self.version):
                    return self.client.call_retrying(self.service, self.method, self.body, sent=sent)
            finally:
                if sent:
                    self.endpoint = sent[-1].endpoint
        from fannode.zmqrpc.connection import Connection, shared_context
        from fannode.zmqrpc.direct import call_on
        if self.connection is None:
            self.connection = Connection(shared_context(), self.address)
        return call_on(self.connection, self.subject, self.body, self.timeout)

    def instance(self) -> tuple[dict[str, Any], bool]:
        """What the registry says of the instance that answered, and whether it knew it."""
        if self.client is not None:
            found = [i for i in self.client.registry.lookup(self.service) if i.endpoint == self.endpoint]
            if found:
                return found[0].to_dict(), True
        return {'endpoint': self.endpoint}, False


def show(args: argparse.Namespace, caller: Caller, reply: Any, duration: float, trace_id: str) -> None:
    from fannode.cli import output
    if args.json:
        output.print_json({'reply': reply, 'instance': caller.instance()[0],
                           'duration_ms': round(duration * 1000, 3), 'trace_id': trace_id})
        return
    output.print_value(reply)
    if not args.show_instance:
        return
    instance, found = caller.instance()
    output.err.print('answered by %s at %s%s' % (
        instance.get('id', '?')[:12], caller.endpoint,
        ' (pid %s on %s)' % (instance['pid'], instance['host']) if found else ''), highlight=False)


def dump(caller: Caller, headers: dict[str, str], trace_id: str, duration: float, outcome: str) -> None:
    """curl -v style: '>' what was sent, '<' what came back."""
    from fannode.cli import output
    lines = ['> %s' % caller.subject] + ['> %s: %s' % item for item in headers.items()]
    instance, found = caller.instance() if caller.endpoint else ({}, False)
    if found:
        lines.append('< instance: %s (pid %s on %s)' % (instance.get('id'), instance.get('pid'),
                                                        instance.get('host')))
    lines += ['< endpoint: %s' % (caller.endpoint or '-'), '< trace-id: %s' % trace_id,
              '< duration: %.2f ms' % (duration * 1000), '< %s' % outcome]
    output.err.print('\n'.join(lines), markup=False, highlight=False)


def load_run(args: argparse.Namespace, caller: Caller) -> int:
    from fannode.cli import loadrun, output
    progress = output.err.is_terminal and not args.json
    summary = loadrun.run(caller.call, args.count, args.concurrency, args.trace_id or '', progress)
    if args.json:
        output.print_json(summary.to_dict())
    else:
        loadrun.print_summary(summary)
    error = summary.most_common_error()
    return 0 if error is None else exit_code(error)


def read_body(text: str) -> Any:
    """The body argument: JSON, '-' for stdin, or @FILE (curl's way)."""
    from fannode.cli.base import json_body
    from fannode.exceptions import UsageError
    if not text.startswith('@'):
        return json_body(text)
    path = text[1:]
    try:
        with open(path, 'rb') as f:
            data = f.read(MAX_BODY_FILE + 1)
    except OSError as e:
        raise UsageError('body file %s: %s' % (path, e.strerror or e)) from None
    if len(data) > MAX_BODY_FILE:
        raise UsageError('body file %s: over %d MiB' % (path, MAX_BODY_FILE // 2 ** 20))
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise UsageError('body file %s: not UTF-8 text' % path) from None
    return json_body(text, 'body in %s' % path)


def parse_headers(items: list[str]) -> dict[str, str]:
    from fannode.core import current, wire
    from fannode.exceptions import UsageError
    headers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep:
            raise UsageError("--header %s: expected KEY=VALUE" % item[:80])
        headers[key.strip()] = value
    problem = current.header_problem(headers, wire.MAX_HEADERS)
    if problem:
        raise UsageError('--header: %s' % problem)
    return headers


def check_address(address: str) -> None:
    from fannode.exceptions import UsageError
    match = ADDRESS.fullmatch(address)
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise UsageError("--address: expected tcp://HOST:PORT, got '%s'" % address[:200])


def exit_code(exc: BaseException) -> int:
    """The exit status for an error (the table every command uses: fannode.cli.exitcodes)."""
    from fannode.cli.exitcodes import for_error
    return for_error(exc)
