"""`python -m bench [--quick] [--duration SECONDS] [--rounds N] [--json]`: measure raw
pyzmq and fannode RPC side by side, print them with ratios to the raw anchor and the
targets.

Exits 0 whether targets are met or missed (it reports, it does not gate); 1 with a
one-line error when something fails to start or a call fails; 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import report
from bench.procs import BENCH, BenchError, Procs, free_port
from bench.report import commas, note_noisy, print_json, round_ratios, spread, table_console, verdict
from bench.runner import parse_rate_args, run_bench

# Targets: fannode rates as multiples of the raw sequential rate; RSS in MiB.
TARGET_SEQUENTIAL = 0.35
TARGET_IN_FLIGHT = 1.0
TARGET_RSS_MIB = 40.0
START_TIMEOUT = 15.0
RAMP = 0.1        # seconds for the in-flight greenlets to fill the pipe before counting

RATES = ('raw_sequential', 'fannode_sequential', 'fannode_in_flight')


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m bench', description='Measure raw pyzmq and fannode RPC side by side, with '
        'ratios to the raw anchor and the targets. Exits 0 on a MISS; 1 if something fails to start.')
    args = parse_rate_args(parser, argv, 'calls kept in flight in the concurrent measurement (default: 50)')
    args.idle = 0.5 if args.quick else 1.0
    return args


def measure(args: argparse.Namespace, procs: Procs, say: Callable[[str], None],
            progress: Progress) -> dict[str, Any]:
    """Start the processes, run the measurements, return the figures."""
    # Imported here: gevent and zmq.green only once we know we will run.
    from fannode.discovery import get_registry
    from fannode.zmqrpc.client import RpcClient

    from bench import rpc
    rpc.quiet_interrupts()

    task = progress.add_task('starting', total=3 + args.rounds)

    def step(text: str) -> None:
        progress.update(task, description=text + '…')

    step('starting the raw REP server, a hub and an instance')
    raw_port = free_port()
    raw = procs.raw_server(raw_port)
    url = 'hub://127.0.0.1:%d' % free_port()
    hub = procs.hub(url)
    hub.wait_for('hub listening', START_TIMEOUT)
    instance = procs.instance(url, BENCH / 'conf' / 'greeting.yml')
    raw.wait_for('ready', START_TIMEOUT)
    instance.wait_for('serving', START_TIMEOUT)
    client = RpcClient(get_registry(url))
    if not client.registry.lookup('Greeting'):
        raise BenchError('the instance says it is serving, but the hub at %s does not list it' % url)
    raw_client = rpc.RawClient('tcp://127.0.0.1:%d' % raw_port)
    raw_call, fannode_call = raw_client.call, rpc.fannode_call(client.proxy('Greeting'))
    rpc.check(raw_call)
    rpc.check(fannode_call)
    say('  ✓ hub at %s, instance pid %d' % (url, instance.pid))
    progress.advance(task)

    step('warming up')
    watch = rpc.CpuWatch([os.getpid(), raw.pid, hub.pid, instance.pid])
    rpc.sequential(raw_call, args.warmup)
    rpc.sequential(fannode_call, args.warmup)
    rpc.in_flight(fannode_call, args.concurrency, args.warmup, 0.0)
    progress.advance(task)

    rates: dict[str, list[Any]] = {key: [] for key in RATES}
    part = args.duration / args.rounds
    for i in range(args.rounds):
        step('round %d/%d: raw pyzmq sequential' % (i + 1, args.rounds))
        rates['raw_sequential'].append(rpc.sequential(raw_call, part))
        step('round %d/%d: fannode sequential' % (i + 1, args.rounds))
        rates['fannode_sequential'].append(rpc.sequential(fannode_call, part))
        step('round %d/%d: fannode, %d in flight' % (i + 1, args.rounds, args.concurrency))
        rates['fannode_in_flight'].append(rpc.in_flight(fannode_call, args.concurrency, part, RAMP))
        anchor = rates['raw_sequential'][-1].per_second
        say('  ✓ round %d/%d: raw %s/s, fannode sequential %s/s (%.2f×), %d in flight %s/s (%.2f×)' % (
            i + 1, args.rounds, commas(anchor), commas(rates['fannode_sequential'][-1].per_second),
            rates['fannode_sequential'][-1].per_second / anchor, args.concurrency,
            commas(rates['fannode_in_flight'][-1].per_second), rates['fannode_in_flight'][-1].per_second / anchor))
        progress.advance(task)
    background = watch.background()
    raw_client.close()
    raw.stop()

    step('idle instance RSS (%gs idle)' % args.idle)
    rss = rpc.idle_rss(instance.pid, args.idle)
    progress.advance(task)
    client.close()

    figures = summarize(rates)
    figures['idle_instance_rss'] = {'mib': round(rss, 1), 'target_max_mib': TARGET_RSS_MIB,
                                    'pass': rss <= TARGET_RSS_MIB}
    figures['background_cpu'] = round(background, 2)
    return figures


def summarize(rates: dict[str, list[Any]]) -> dict[str, Any]:
    """Totals over the rounds; ratios to raw over the totals, and per round for the spread."""
    anchor = rates['raw_sequential']
    anchor_rate = sum(r.calls for r in anchor) / sum(r.seconds for r in anchor)
    targets = {'fannode_sequential': TARGET_SEQUENTIAL, 'fannode_in_flight': TARGET_IN_FLIGHT}
    figures: dict[str, Any] = {}
    for key in RATES:
        calls, seconds = sum(r.calls for r in rates[key]), sum(r.seconds for r in rates[key])
        ratio = calls / seconds / anchor_rate
        figure = {'calls': calls, 'seconds': round(seconds, 3), 'calls_per_s': round(calls / seconds, 1),
                  'ratio': round(ratio, 3),
                  'round_ratios': round_ratios(rates[key], anchor)}
        if key in targets:
            figure.update({'target_min_ratio': targets[key], 'pass': ratio >= targets[key]})
        figures[key] = figure
    return figures


def machine() -> dict[str, Any]:
    import msgpack
    import zmq
    return report.machine(pyzmq=zmq.__version__, libzmq=zmq.zmq_version(),
                          msgpack='.'.join(map(str, msgpack.version)))


def table(args: argparse.Namespace, figures: dict[str, Any], info: dict[str, Any]) -> Table:
    t = Table(title='fannode benchmark', caption=(
        '%d CPUs, Python %s, pyzmq %s (libzmq %s); %gs per rate in %d round(s), after %gs warm-up; '
        'other processes used %.2f CPU meanwhile' % (
            info['cpus'], info['python'], info['pyzmq'], info['libzmq'], args.duration, args.rounds,
            args.warmup, figures['background_cpu'])))
    t.add_column('measurement')
    t.add_column('result', justify='right')
    t.add_column('vs raw seq', justify='right')
    t.add_column('per round', justify='right')
    t.add_column('target', justify='right')
    t.add_column('', justify='center')

    raw = figures['raw_sequential']
    t.add_row('raw pyzmq REQ/REP, sequential', '%s calls/s' % commas(raw['calls_per_s']), '1.00×', '', 'anchor', '')
    for key, label in (('fannode_sequential', 'fannode, sequential'),
                       ('fannode_in_flight', 'fannode, %d in flight' % args.concurrency)):
        f = figures[key]
        t.add_row(label, '%s calls/s' % commas(f['calls_per_s']), '%.2f×' % f['ratio'], spread(f['round_ratios']),
                  '≥ %.2f×' % f['target_min_ratio'], verdict(f['pass']))
    rss = figures['idle_instance_rss']
    t.add_row('idle instance RSS', '%.1f MiB' % rss['mib'], '', '', '≤ %g MiB' % rss['target_max_mib'],
              verdict(rss['pass']))
    return t


def progress_bar(err: Console) -> Progress:
    """The live display: a bar over the steps (3 + the rounds), with the time so far."""
    return Progress(SpinnerColumn(), TextColumn('{task.description}'), BarColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs = Procs()

    def render(figures: dict[str, Any], err: Console) -> None:
        info = machine()
        note_noisy(err, figures['background_cpu'], 'the ratios are')
        if args.json:
            print_json({'machine': info, 'duration': args.duration, 'rounds': args.rounds,
                        'warmup': args.warmup, 'concurrency': args.concurrency, 'figures': figures})
        else:
            table_console(120).print(table(args, figures, info))

    return run_bench(procs, lambda say, progress: measure(args, procs, say, progress), render, progress_bar)


if __name__ == '__main__':
    sys.exit(main())
