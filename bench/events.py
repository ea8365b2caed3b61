"""`python -m bench.events [--events N] [--json]`: events per second end to end through
the hub — emitted in this process, handled and acked by an instance in another — with
the hub's journal on. The raw pika anchor joins when RabbitMQ is available (issue 7).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.procs import BENCH, BenchError, Procs, free_port
from bench.runner import run_bench, spinner

TARGET_EVENTS_PER_S = 5000
START_TIMEOUT = 15.0


def measure(procs: Procs, count: int, status=print) -> dict[str, Any]:
    import gevent

    from fannode.core.events import Event
    from fannode.discovery import get_registry
    from fannode.events import get_events
    from fannode.zmqrpc.client import RpcClient

    from bench import rpc
    rpc.quiet_interrupts()  # SIGTERM in a greenlet: exit 130 without a traceback

    url = 'hub://127.0.0.1:%d' % free_port()
    hub = procs.hub(url)
    hub.wait_for('hub listening', START_TIMEOUT)
    sink = procs.instance(url, BENCH / 'conf' / 'sink.yml')
    sink.wait_for('serving', START_TIMEOUT)
    client = RpcClient(get_registry(url))
    events = get_events(url)
    counter = client.proxy('Sink', timeout=10)

    def run(n: int) -> float:
        start_count = counter.count()
        started = time.monotonic()
        for i in range(n):
            events.emit(Event.new('bench.tick', {'n': i}, 'bench', 'bench'))
        if not events.flush(60):
            raise BenchError('the hub did not take %d events within 60 s' % n)
        emitted = time.monotonic()
        while counter.count() - start_count < n:
            if time.monotonic() - started > 120:
                raise BenchError('the sink handled %d of %d events in 120 s' % (counter.count() - start_count, n))
            gevent.sleep(0.005)
        done = time.monotonic()
        return n / (done - started), n / (emitted - started)

    status('warming up')
    run(min(1000, count))
    status('measuring %d events' % count)
    end_to_end, emit_rate = run(count)
    client.close()
    events.close(1)
    return {'events': count, 'end_to_end_per_s': round(end_to_end), 'emit_per_s': round(emit_rate),
            'target_min_per_s': TARGET_EVENTS_PER_S, 'pass': end_to_end >= TARGET_EVENTS_PER_S}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench.events', description=__doc__.split('\n\n')[0])
    parser.add_argument('--events', type=int, default=20000, metavar='N', help='events to send (default: 20000)')
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')
    args = parser.parse_args(argv)
    procs = Procs()

    def render(figures: dict[str, Any], err: Console) -> None:
        if args.json:
            print(json.dumps(figures))
            return
        t = Table(title='fannode events benchmark (hub, journal on, acks on)')
        for col in ('measurement', 'result', 'target', ''):
            t.add_column(col)
        t.add_row('emit → handled, end to end', '{:,} events/s'.format(figures['end_to_end_per_s']),
                  '≥ {:,}/s'.format(TARGET_EVENTS_PER_S), '[green]PASS[/]' if figures['pass'] else '[red]MISS[/]')
        t.add_row('emit → taken by the hub', '{:,} events/s'.format(figures['emit_per_s']), '', '')
        t.add_row('raw pika → RabbitMQ', 'see python -m bench.amqp (fannode on RabbitMQ beside raw pika)', '', '')
        Console().print(t)

    return run_bench(procs, lambda say, status: measure(procs, args.events, status), render,
                     spinner('events benchmark'))


if __name__ == '__main__':
    sys.exit(main())
