"""`python -m bench [--quick] [--only CASES] [--without COMPONENTS] [--results-dir DIR]`:
every benchmark case beside its anchors, in one run, as one table; the same rows go to
bench/results/<time>.json. `python -m bench --compare A.json B.json`: two runs side by side.

Exits 0 whether targets are met or missed (it reports, it does not gate) and when a
component is missing (its rows read "skipped"); 1 when a case failed (its row says why,
and where its logs are); 130 on Ctrl-C or SIGTERM. See bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console

from bench import (breakers, dashboard, discover, events, gateway, ids, localcalls, node, procs, report, rollout, rpc,
                   tail, top, web)
from bench.procs import BENCH
from bench.runner import Context, install_signals, progress_display, run_cases

# In this order: the RabbitMQ cases first, so the broker stops before the others run.
CASES = {'rpc': rpc.run, 'events': events.run, 'payload': rpc.payload, 'web': web.run, 'node': node.run,
         'breakers': breakers.run, 'ids': ids.run, 'gateway': gateway.run, 'localcalls': localcalls.run,
         'tail': tail.case, 'rollout': rollout.run, 'dashboard': dashboard.case, 'top': top.case,
         'discover': discover.case}
USES_SERVERS = {'rpc', 'events'}
# A caller in this process (or started by it) against a server: pinned apart (bench/procs.py).
# The others start processes by the dozen (a node, tmux) and run on every CPU, as before.
PAIRS = {'rpc', 'events', 'payload', 'web', 'breakers', 'ids', 'gateway', 'localcalls'}
COMPONENTS = ('rabbitmq', 'anchors', 'wrk')


def names(text: str, known: tuple[str, ...], flag: str, parser: argparse.ArgumentParser) -> list[str]:
    chosen = [n.strip() for n in text.split(',') if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown or not chosen:
        parser.error('%s takes a comma-separated list of %s' % (flag, ', '.join(known)))
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m bench', description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='short durations and small counts, every row, the whole run in about 80 s: a smoke test')
    parser.add_argument('--only', metavar='CASES', help='run these cases only: %s' % ','.join(CASES))
    parser.add_argument('--without', metavar='COMPONENTS', default='',
                        help='treat these as missing, their rows skipped: %s' % ','.join(COMPONENTS))
    parser.add_argument('--results-dir', type=Path, default=BENCH / 'results', metavar='DIR',
                        help='where the JSON of the run goes (default: bench/results)')
    parser.add_argument('--no-pin', action='store_true',
                        help='leave every process on every CPU (default: callers on one, servers on another)')
    parser.add_argument('--compare', nargs=2, type=Path, metavar=('A.json', 'B.json'),
                        help='print run B beside run A, row by row, and exit')
    args = parser.parse_args(argv)
    args.cases = names(args.only, tuple(CASES), '--only', parser) if args.only else list(CASES)
    args.without = set(names(args.without, COMPONENTS, '--without', parser)) if args.without else set()
    return args


def caption(mode: str, info: dict, cases: dict, seconds: float) -> str:
    return ('%s run in %.0f s on %s, %d cores, %.0f GiB, Python %s, fannode %s. Each figure: the median over '
            'the rounds after a warm-up, (min–max) in grey; fannode ÷ anchor taken round by round; %s. Case '
            'times and CPU used by other processes meanwhile: %s.' % (
                mode, seconds, info['cpu'], info['cores'], info['ram_gib'], info['python'], info['fannode_rev'],
                procs.pinning(),
                ', '.join('%s %.0f s, %.2f CPU' % (name, c['seconds'], c['background_cpu'])
                          for name, c in cases.items())))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out, err = report.console(), Console(stderr=True)
    if args.compare:
        runs = [json.loads(path.read_text()) for path in args.compare]
        out.print(report.comparison(*runs, names=tuple(p.name for p in args.compare)))
        return 0

    install_signals()
    if args.no_pin:
        procs.PINNING = False
    mode = 'quick' if args.quick else 'full'
    started, t0 = datetime.now(), time.monotonic()
    selected = {name: case for name, case in CASES.items() if name in args.cases}
    with progress_display(err) as progress:
        ctx = Context(args.quick, args.without, progress)
        if 'events' in selected or ('rpc' in selected and 'anchors' not in args.without):  # nameko's broker
            ctx.prestart_rabbitmq()
        try:
            rows, cases = run_cases(ctx, selected, [n for n in selected if n in USES_SERVERS], PAIRS)
        except KeyboardInterrupt:
            err.print('interrupted; everything started is stopped (logs in %s)' % ctx.dir)
            return 130
    seconds = time.monotonic() - t0
    info = report.machine()
    info['rabbitmq'] = ctx.servers.versions.get('rabbitmq-server')

    out.print(report.table(rows, caption(mode, info, cases, seconds)))
    report.note_noisy(err, {name: c['background_cpu'] for name, c in cases.items()})
    path = args.results_dir / ('%s.json' % started.strftime('%Y%m%d-%H%M%S'))
    report.save(path, {'started': started.isoformat(timespec='seconds'), 'mode': mode, 'seconds': round(seconds, 1),
                       'argv': sys.argv[1:] if argv is None else argv, 'machine': info, 'pinning': {
                           'layout': procs.pinning(), 'rabbitmq': ctx.servers.cpus, **{
                               role: procs.cpus_for(role) for role in (procs.CLIENT, procs.SERVER, procs.BROKER)}},
                       'cases': cases,
                       'rows': [row.json() for row in rows]})
    err.print('results: %s' % path, highlight=False)
    failed = [name for name, c in cases.items() if c['status'] == 'failed'] + ctx.problems
    if failed:
        err.print('[bold red]bench failed:[/] %s (logs kept in %s)' % (', '.join(failed), ctx.dir), highlight=False)
        return 1
    shutil.rmtree(ctx.dir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
