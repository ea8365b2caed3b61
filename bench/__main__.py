"""`python -m bench [--quick] [--duration SECONDS] [--json]`: run every measurement and
print them side by side, with ratios to the raw pyzmq anchor and the targets.

Exits 0 whether targets are met or missed (it reports, it does not gate); 1 with a
one-line error when something fails to start or a call fails; 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.procs import BENCH, BenchError, Procs, free_port

# Targets: fannode rates as multiples of the raw sequential rate; RSS in MiB.
TARGET_SEQUENTIAL = 0.35
TARGET_IN_FLIGHT = 1.0
TARGET_RSS_MIB = 40.0
START_TIMEOUT = 15.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m bench', description=__doc__.split('\n\n')[0])
    parser.add_argument('--duration', type=float, metavar='SECONDS',
                        help='timed length of each rate measurement (default: 3, or 0.5 with --quick)')
    parser.add_argument('--quick', action='store_true', help='short measurements: a smoke test')
    parser.add_argument('--concurrency', type=int, default=50, metavar='N',
                        help='calls kept in flight in the concurrent measurement (default: 50)')
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 0.5 if args.quick else 3.0
    if args.duration <= 0 or args.concurrency < 1:
        parser.error('--duration and --concurrency must be positive')
    args.warmup = 0.2 if args.quick else min(1.0, max(0.3, args.duration / 3))
    args.idle = 0.5 if args.quick else 1.0
    return args


def measure(args: argparse.Namespace, procs: Procs, say: Any, step: Any) -> dict[str, Any]:
    """Start the processes, run the measurements in order, return the figures."""
    # Imported here: gevent and zmq.green only once we know we will run.
    from fannode.discovery import get_registry
    from fannode.zmqrpc.client import RpcClient

    from bench import rpc

    step('starting the raw REP server, the hub and an instance')
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
    proxy = client.proxy('Greeting')
    say('hub at %s, instance pid %d' % (url, instance.pid))

    figures: dict[str, Any] = {}
    d, w = args.duration, args.warmup

    step('raw pyzmq REQ/REP, sequential (%gs)' % d)
    anchor = rpc.raw_sequential('tcp://127.0.0.1:%d' % raw_port, d, w)
    raw.stop()
    figures['raw_sequential'] = rate_figure(anchor, anchor.per_second)
    say('raw pyzmq sequential: %s calls/s' % format(round(anchor.per_second), ','))

    step('fannode, sequential (%gs)' % d)
    seq = rpc.fannode_sequential(proxy, d, w)
    figures['fannode_sequential'] = rate_figure(seq, anchor.per_second, TARGET_SEQUENTIAL)
    say('fannode sequential: %s calls/s' % format(round(seq.per_second), ','))

    step('fannode, %d in flight (%gs)' % (args.concurrency, d))
    par = rpc.fannode_in_flight(proxy, args.concurrency, d, w)
    figures['fannode_in_flight'] = rate_figure(par, anchor.per_second, TARGET_IN_FLIGHT)
    say('fannode %d in flight: %s calls/s' % (args.concurrency, format(round(par.per_second), ',')))

    step('idle instance RSS (%gs idle)' % args.idle)
    rss = rpc.idle_rss(instance.pid, args.idle)
    figures['idle_instance_rss'] = {'mib': round(rss, 1), 'target_max_mib': TARGET_RSS_MIB,
                                    'pass': rss <= TARGET_RSS_MIB}
    say('idle instance RSS: %.1f MiB' % rss)
    client.close()
    return figures


def rate_figure(rate: Any, anchor: float, target: float | None = None) -> dict[str, Any]:
    ratio = rate.per_second / anchor if anchor else 0.0
    figure = {'calls': rate.calls, 'seconds': round(rate.seconds, 3),
              'calls_per_s': round(rate.per_second, 1), 'ratio': round(ratio, 3)}
    if target is not None:
        figure.update(target_min_ratio=target, **{'pass': ratio >= target})
    return figure


def machine() -> dict[str, Any]:
    import msgpack
    import zmq
    return {'cpus': os.cpu_count(), 'python': platform.python_version(),
            'pyzmq': zmq.__version__, 'libzmq': zmq.zmq_version(),
            'msgpack': '.'.join(map(str, msgpack.version)), 'platform': platform.platform()}


def table(args: argparse.Namespace, figures: dict[str, Any], info: dict[str, Any]) -> Table:
    t = Table(title='fannode benchmark', caption='%d CPUs, Python %s, pyzmq %s (libzmq %s); %gs per rate, '
              'after %gs warm-up' % (info['cpus'], info['python'], info['pyzmq'], info['libzmq'],
                                     args.duration, args.warmup))
    t.add_column('measurement')
    t.add_column('result', justify='right')
    t.add_column('vs raw seq', justify='right')
    t.add_column('target', justify='right')
    t.add_column('', justify='center')

    def verdict(ok: bool) -> str:
        return '[bold green]PASS[/]' if ok else '[bold red]MISS[/]'

    raw = figures['raw_sequential']
    t.add_row('raw pyzmq REQ/REP, sequential', '%s calls/s' % format(round(raw['calls_per_s']), ','),
              '1.00×', 'anchor', '')
    for key, label in (('fannode_sequential', 'fannode, sequential'),
                       ('fannode_in_flight', 'fannode, %d in flight' % args.concurrency)):
        f = figures[key]
        t.add_row(label, '%s calls/s' % format(round(f['calls_per_s']), ','), '%.2f×' % f['ratio'],
                  '≥ %.2f×' % f['target_min_ratio'], verdict(f['pass']))
    rss = figures['idle_instance_rss']
    t.add_row('idle instance RSS', '%.1f MiB' % rss['mib'], '', '≤ %g MiB' % rss['target_max_mib'],
              verdict(rss['pass']))
    return t


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Console()
    err = Console(stderr=True)
    procs = Procs()
    failed = True
    try:
        with err.status('starting') as status:
            figures = measure(args, procs, say=lambda text: err.print('  ✓ ' + text, highlight=False),
                              step=lambda text: status.update(text + '…'))
        failed = False
    except BenchError as e:
        return fail(err, str(e), procs)
    except KeyboardInterrupt:
        failed = False
        err.print('interrupted')
        return 130
    except Exception as e:  # a fannode error from a call, or a bug here: still one line
        return fail(err, '%s: %s' % (type(e).__name__, e), procs)
    finally:
        procs.stop_all()
        if not failed:
            procs.cleanup()
    info = machine()
    if args.json:
        json.dump({'machine': info, 'duration': args.duration, 'warmup': args.warmup,
                   'concurrency': args.concurrency, 'figures': figures}, sys.stdout, indent=2)
        sys.stdout.write('\n')
    else:
        out.print(table(args, figures, info))
    return 0


def fail(err: Console, message: str, procs: Procs) -> int:
    from rich.markup import escape
    err.print('[bold red]bench failed:[/] %s (process logs in %s)' % (escape(message), procs.dir),
              highlight=False, soft_wrap=True)
    return 1


if __name__ == '__main__':
    sys.exit(main())
