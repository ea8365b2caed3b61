from __future__ import annotations

import argparse
from typing import Any

from fannode.cli.base import Command

METRICS_TIMEOUT = 1.0  # an instance that does not answer get_metrics in this is 'no answer'


class InspectCommand(Command):
    """Describe a service: its RPC methods, signatures and docs; the services it depends
    on (hard and soft) and which of them have no ready instance; the circuit breakers of
    the calls its instances make (those it has any of).

        Orders
          Orders.place(item)  Place an order.
        dependencies
          hard Store   missing on 1 of 2 instances (not ready)
          soft Mailer  ok
        instances
          1a2b3c4d  ready      breakers: Mailer open (5 failures, retry in 2.5s)
          5e6f7a8b  not ready  missing Store
    """

    help = 'Describe a service: its methods, dependencies and circuit breakers.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('service', metavar='SERVICE')
        parser.add_argument('--builtins', action='store_true',
                            help='also list the built-in methods (ping, status, ...)')
        parser.add_argument('--json', action='store_true', help='print JSON')

    def run(self, args: argparse.Namespace) -> int:
        from rich.markup import escape

        from fannode.cli import cluster, output

        client = cluster.client(args)
        instances = client.registry.lookup(args.service)
        if instances:  # a ready one if there is; one that is not ready describes itself as well
            from fannode.zmqrpc.direct import call_instance
            pick = next((i for i in instances if i.ready), instances[0])
            described = call_instance(pick.endpoint, '%s.inspect' % args.service, {}, client.timeout)
        else:  # none: said in the client's words
            described = client.call_retrying(args.service, 'inspect', {})
        methods = [m for m in described.get(args.service, []) if args.builtins or not m['builtin']]
        health = resilience(instances)
        if args.json:
            output.print_json(dict(service=args.service, methods=methods, **health))
            return 0
        output.out.print('[bold]%s[/]' % escape(args.service))
        for m in methods:
            doc = m['doc'].splitlines()[0] if m['doc'] else ''
            output.out.print('  [cyan]%s.%s[/]%s  [dim]%s[/]' % (args.service, m['name'], m['signature'], doc))
            for r in m.get('http') or []:  # a two-door method: its HTTP routes too
                output.out.print('    [dim]HTTP %s %s[/]' % (escape(','.join(r['methods'])), escape(r['path'])))
        if not methods:
            output.out.print('  [dim](no RPC methods)[/]')
        for line in describe(health):
            output.out.print(line, markup=False, highlight=False)
        return 0


def resilience(instances: list[Any]) -> dict[str, Any]:
    """What the instances of a service say of their dependencies (discovery: `ready`,
    meta 'dependencies' and 'missing') and breakers (each one's get_metrics, asked at once)."""
    import gevent

    from fannode.core.dependencies import announced
    from fannode.zmqrpc.direct import call_instance

    def metrics(info: Any) -> Any:
        service = info.services[0] if info.services else ''
        try:
            return call_instance(info.endpoint, '%s.get_metrics' % service, {}, METRICS_TIMEOUT)
        except Exception as e:  # one instance that does not answer is said, not fatal
            return e

    asks = [gevent.spawn(metrics, info) for info in instances]
    gevent.joinall(asks)
    hard: dict[str, None] = {}
    soft: dict[str, None] = {}
    rows = []
    for info, ask in zip(instances, asks):
        its_hard, its_soft, its_missing = announced(info)
        hard.update(dict.fromkeys(its_hard))
        soft.update(dict.fromkeys(its_soft))
        answer = ask.value
        row: dict[str, Any] = {'id': info.id, 'endpoint': info.endpoint, 'ready': info.ready,
                               'missing': its_missing}
        if isinstance(answer, dict):
            section = answer.get('breakers')
            row['breakers'] = section if isinstance(section, dict) else {}
        else:
            row['breakers'] = None
            row['error'] = '%s: %s' % (type(answer).__name__, answer)
        rows.append(row)
    missing = {s: sum(s in r['missing'] for r in rows) for s in list(hard) + list(soft)}
    return {'dependencies': {'hard': list(hard), 'soft': list(soft),
                             'missing': {s: n for s, n in missing.items() if n}},
            'instances': rows}


def describe(health: dict[str, Any]) -> list[str]:
    """The dependency and breaker lines of the human output; none for a service that
    declares no dependencies and whose instances call nothing."""
    from fannode.core.text import visible

    deps, rows = health['dependencies'], health['instances']
    lines = []
    if deps['hard'] or deps['soft']:
        lines.append('dependencies')
        width = max(len(s) for s in deps['hard'] + deps['soft'])
        for kind in ('hard', 'soft'):
            for service in deps[kind]:
                n = deps['missing'].get(service, 0)
                state = 'ok' if not n else 'missing on %d of %d instance%s%s' % (
                    n, len(rows), '' if len(rows) == 1 else 's', ' (not ready)' if kind == 'hard' else '')
                lines.append('  %s %-*s  %s' % (kind, width, visible(service), state))
    if any(r['missing'] or r['breakers'] or not r['ready'] for r in rows) or deps['hard'] or deps['soft']:
        lines.append('instances')
        for r in rows:
            what = ['missing %s' % ', '.join(map(visible, r['missing']))] if r['missing'] else []
            if r['breakers'] is None:
                what.append('breakers unknown (%s)' % visible(r['error']))
            elif r['breakers']:
                what.append('breakers: %s' % ', '.join(_breaker(visible(str(s)), b)
                                                       for s, b in sorted(r['breakers'].items(), key=str)))
            line = '  %s  %-9s  %s' % (visible(r['id'][:8]), 'ready' if r['ready'] else 'not ready', '; '.join(what))
            lines.append(line.rstrip())
    return lines


def _breaker(service: str, breaker: Any) -> str:
    """'Mailer open (5 failures, retry in 2.5s)', 'Store closed, 1 of 2 endpoints open'."""
    if not isinstance(breaker, dict):
        return '%s ?' % service
    state = str(breaker.get('state', '?'))
    notes = []
    if breaker.get('failures'):
        notes.append('%s failure%s' % (breaker['failures'], '' if breaker['failures'] == 1 else 's'))
    if isinstance(breaker.get('retry_in'), (int, float)):
        notes.append('retry in %.1fs' % breaker['retry_in'])
    text = '%s %s%s' % (service, state, ' (%s)' % ', '.join(notes) if notes else '')
    from fannode.calls.breaker import open_endpoints
    bad, endpoints = open_endpoints(breaker)
    if bad and state == 'closed':
        text += ', %d of %d endpoints open' % (bad, endpoints)
    return text
