"""`python -m bench.amqp [--quick] [--events N] [--rounds N] [--json]`: events end to end
through RabbitMQ, publisher confirms and consumer acks on, for raw pika (the anchor) and
the fannode `amqp://` events backend side by side, against a RabbitMQ started here with
scripts/provision on a free port.

Exits 0 whether the target is met or missed (it reports, it does not gate); 1 with a
one-line error when something fails to start or an event goes missing; 130 on Ctrl-C or
SIGTERM. Without the fannode backend (no `amqp` entry point in `fannode.events`), the
fannode row says "not available" and the anchor is measured alone.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from importlib import metadata
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import report
from bench.anchors import Servers
from bench.procs import BENCH, FANNODE, BenchError, Proc, Procs, free_port
from bench.report import commas, note_noisy, print_json, round_ratios, spread, table_console, verdict
from bench.runner import quick_defaults, run_bench, spinner

TARGET = 0.8            # fannode end to end, as a multiple of raw pika's
START_TIMEOUT = 15.0    # for each of our processes
RUN_TIMEOUT = 120.0     # one run: first publish to last ack
EXCHANGE = 'bench.raw'  # the anchor's; fannode's is fannode.events
EVENT = 'bench.tick'
ROWS = ('raw', 'fannode')


@dataclasses.dataclass
class Run:
    events: int
    confirmed_s: float  # first publish → the last publish confirmed by RabbitMQ
    acked_s: float      # first publish → the consumer acked the last one

    @property
    def per_second(self) -> float:
        return self.events / self.acked_s


class RawPika:
    """The anchor's publisher, as the pika docs show it: a BlockingConnection, a channel in
    confirm mode, persistent messages. Each basic_publish waits for its confirm."""

    def __init__(self, url: str):
        import msgpack
        import pika
        self.pack = msgpack.packb
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.channel.exchange_declare(EXCHANGE, 'topic', durable=True)
        # Persistent, as fannode's are: the same work for RabbitMQ on both sides.
        self.props = pika.BasicProperties(content_type='application/msgpack', delivery_mode=2)
        self.sent = 0

    def publish(self, n: int) -> tuple[float, float, int]:
        """(start, confirmed, end): wall-clock times, and the total the consumer reports at."""
        end = self.sent + n
        start = time.time()
        for i in range(n):
            self.channel.basic_publish(EXCHANGE, EVENT, self.pack({'n': i, 'end': end}), self.props)
        self.sent = end
        return start, time.time(), end

    def close(self) -> None:
        self.connection.close()


class FannodeEmitter:
    """The public path of service code outside an instance: get_events(url), emit, flush."""

    def __init__(self, url: str):
        from fannode.core.events import Event
        from fannode.events import get_events
        self.event = Event
        self.events = get_events(url)
        self.events.check()
        self.sent = 0

    def publish(self, n: int) -> tuple[float, float, int]:
        end = self.sent + n
        start = time.time()
        for i in range(n):
            self.events.emit(self.event.new(EVENT, {'n': i, 'end': end}, 'bench', 'bench'))
        if not self.events.flush(RUN_TIMEOUT):
            raise BenchError('RabbitMQ did not confirm %d events from fannode within %gs' % (n, RUN_TIMEOUT))
        self.sent = end
        return start, time.time(), end

    def close(self) -> None:
        self.events.close(1)


def fannode_missing(url: str) -> str | None:
    """Why the fannode amqp backend cannot be used, or None. Only a backend that is not
    there (yet) counts: any other failure fails the bench."""
    from fannode.exceptions import UsageError
    from fannode.plugins import load_backend
    try:
        load_backend('fannode.events', url)
    except UsageError as e:
        if 'no events backend' in str(e):
            return str(e)
        raise
    except ImportError as e:  # the module is named, but not importable (being written)
        return 'cannot import fannode.events.amqp: %s' % e
    return None


def wait_done(proc: Proc, end: int, sleep: Callable[[float], None]) -> float:
    """The consumer's wall-clock time of its last ack of a run, from its "done END T" line."""
    pattern = re.compile(r'^done %d ([\d.]+)$' % end, re.M)
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        m = pattern.search(proc.output())
        if m:
            return float(m.group(1))
        if proc.popen.poll() is not None:
            raise BenchError('%s exited with %s: %s' % (proc.name, proc.popen.returncode, proc.last_line()))
        if time.monotonic() > deadline:
            raise BenchError('%s did not ack event %d within %gs (last output: %s)'
                             % (proc.name, end, RUN_TIMEOUT, proc.last_line()))
        sleep(0.01)


def measure(args: argparse.Namespace, procs: Procs, servers: Servers, say: Callable[[str], None],
            status: Callable[[str], None]) -> dict[str, Any]:
    import gevent  # the fannode emitter runs under gevent; the raw side never yields to it

    from bench.rpc import CpuWatch

    status('starting RabbitMQ (scripts/provision, about 6 s)')
    port = free_port()
    servers.start({'rabbitmq': port})
    url = 'amqp://guest:guest@127.0.0.1:%d/%%2F' % port
    say('  ✓ RabbitMQ on 127.0.0.1:%d' % port)

    status('starting the consumers')
    missing = fannode_missing(url)
    consumer = [sys.executable, str(BENCH / 'services' / 'pika_consumer.py'), url]
    consumers = {'raw': procs.start('pika-consumer', consumer)}
    if missing is None:
        # local:// discovery: the instance is called by nobody, RabbitMQ is all it needs.
        consumers['fannode'] = procs.start('instance', [
            *FANNODE, 'instance', '--registry', 'local://bench', '--events', url,
            '--config', str(BENCH / 'conf' / 'amqp_sink.yml')])
    consumers['raw'].wait_for('ready', START_TIMEOUT)
    publishers: dict[str, Any] = {'raw': RawPika(url)}
    if missing is None:
        consumers['fannode'].wait_for('serving', START_TIMEOUT)
        publishers['fannode'] = FannodeEmitter(url)
        say('  ✓ consumers: raw pika pid %d, fannode instance pid %d'
            % (consumers['raw'].pid, consumers['fannode'].pid))
    else:
        say('  ✗ fannode row not available: %s' % missing)
    rows = [key for key in ROWS if key in publishers]

    def run(key: str, n: int) -> Run:
        start, confirmed, end = publishers[key].publish(n)
        done = wait_done(consumers[key], end, gevent.sleep)
        return Run(n, confirmed - start, done - start)

    status('warming up (%d events each)' % args.warmup)
    for key in rows:
        run(key, args.warmup)
    watch = CpuWatch([os.getpid(), *(p.pid for p in consumers.values()), *servers.pids()])
    runs: dict[str, list[Run]] = {key: [] for key in rows}
    for i in range(args.rounds):
        for key in rows:
            status('round %d/%d: %s, %d events' % (i + 1, args.rounds, key, args.events))
            runs[key].append(run(key, args.events))
        say('  ✓ round %d/%d: %s' % (i + 1, args.rounds, ', '.join(
            '%s %s events/s' % (key, commas(r[-1].per_second)) for key, r in runs.items())))
    background = watch.background()
    for publisher in publishers.values():
        publisher.close()

    figures = summarize(runs)
    if missing is not None:
        figures['fannode'] = {'available': False, 'reason': missing}
    figures['background_cpu'] = round(background, 2)
    return figures


def summarize(runs: dict[str, list[Run]]) -> dict[str, Any]:
    """Rates over all rounds; the ratio to raw pika on the totals, and per round for the spread."""
    figures: dict[str, Any] = {}
    for key, rs in runs.items():
        events = sum(r.events for r in rs)
        acked, confirmed = sum(r.acked_s for r in rs), sum(r.confirmed_s for r in rs)
        figures[key] = {'available': True, 'events': events, 'seconds': round(acked, 3),
                        'end_to_end_per_s': round(events / acked, 1), 'confirmed_per_s': round(events / confirmed, 1)}
    if 'fannode' in runs:
        f, raw = figures['fannode'], figures['raw']
        ratio = f['end_to_end_per_s'] / raw['end_to_end_per_s']
        f.update({'ratio': round(ratio, 3), 'target_min_ratio': TARGET, 'pass': ratio >= TARGET,
                  'round_ratios': round_ratios(runs['fannode'], runs['raw'])})
    return figures


def machine(servers: Servers) -> dict[str, Any]:
    return report.machine(pika=metadata.version('pika'), rabbitmq=servers.versions.get('rabbitmq-server', '?'))


def table(args: argparse.Namespace, figures: dict[str, Any], info: dict[str, Any]) -> Table:
    t = Table(title='fannode events through RabbitMQ: first publish → last ack, confirms and acks on', caption=(
        'one publisher in the bench process, one consumer process each; persistent messages, durable queues, '
        'prefetch 100. %d events per run in %d round(s), after %d each to warm up; RabbitMQ %s, pika %s, '
        '%d CPUs, Python %s; other processes used %.2f CPU meanwhile' % (
            args.events, args.rounds, args.warmup, info['rabbitmq'], info['pika'], info['cpus'], info['python'],
            figures['background_cpu'])))
    for name, justify in (('measurement', 'left'), ('end to end', 'right'), ('vs raw pika', 'right'),
                          ('per round', 'right'), ('confirmed', 'right'), ('target', 'right'), ('', 'center')):
        t.add_column(name, justify=justify)
    raw, f = figures['raw'], figures['fannode']
    t.add_row('raw pika: BlockingConnection + confirm_delivery; consumer: basic_qos 100, basic_ack each',
              '%s events/s' % commas(raw['end_to_end_per_s']), '1.00×', '', '%s/s' % commas(raw['confirmed_per_s']),
              'anchor', '')
    label = 'fannode amqp://: get_events(url).emit() + flush(); consumer: @fannode.event in an instance'
    if not f['available']:
        t.add_row(label, 'not available: %s' % escape(f['reason']), '', '', '', '≥ %.1f×' % TARGET, '')
    else:
        t.add_row(label, '%s events/s' % commas(f['end_to_end_per_s']), '%.2f×' % f['ratio'],
                  spread(f['round_ratios']), '%s/s' % commas(f['confirmed_per_s']), '≥ %.1f×' % TARGET,
                  verdict(f['pass']))
    return t


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m bench.amqp', description='Events end to end through RabbitMQ: raw pika against the '
        'fannode amqp:// backend. Exits 0 on a MISS; 1 if something fails.')
    parser.add_argument('--events', type=int, metavar='N',
                        help='events per run (default: 3000, or 500 with --quick)')
    parser.add_argument('--rounds', type=int, metavar='N',
                        help='interleave the runs in N rounds, so a load change on the machine hits both '
                             'alike (default: 3, or 1 with --quick)')
    parser.add_argument('--quick', action='store_true', help='fewer events, one round: a smoke test')
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')
    args = parser.parse_args(argv)
    quick_defaults(args, events=(3000, 500), rounds=(3, 1))
    if args.events < 1 or args.rounds < 1:
        parser.error('--events and --rounds must be positive')
    args.warmup = min(args.events, 200 if args.quick else 500)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs = Procs()
    servers = Servers(procs)

    def render(figures: dict[str, Any], err: Console) -> None:
        note_noisy(err, figures['background_cpu'], 'the ratio is')
        info = machine(servers)
        if args.json:
            print_json({'machine': info, 'events': args.events, 'rounds': args.rounds, 'warmup': args.warmup,
                        'figures': figures})
        else:
            table_console(160).print(table(args, figures, info))

    # The servers stop after our processes, which use them.
    return run_bench(procs, lambda say, status: measure(args, procs, servers, say, status), render,
                     spinner('amqp benchmark'), servers.stop_all)


if __name__ == '__main__':
    sys.exit(main())
