"""The events case: events per second end to end, from the first publish in this process
to the last ack by a consumer in another, for fannode on the hub and on RabbitMQ beside
raw pika with publisher confirms and consumer acks (the anchor), in interleaved rounds.
RabbitMQ is the run's own (scripts/provision, on a free port); without it the hub row
stands alone and the others are skipped.
"""
from __future__ import annotations

import re
import sys
import time
from typing import Any, Callable

from bench.procs import BENCH, BROKER, FANNODE, SERVER, BenchError, Proc, free_port
from bench.report import Row, at_least, compare, skipped
from bench.runner import Context

TARGET = 0.8            # fannode end to end, as a multiple of raw pika's
START_TIMEOUT = 15.0    # for each of our processes
RUN_TIMEOUT = 120.0     # one run: first publish to last ack
EXCHANGE = 'bench.raw'  # the anchor's; fannode's is fannode.events
EVENT = 'bench.tick'
ANCHOR = 'raw pika → RabbitMQ, confirms + acks'


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
            raise BenchError('the backend did not confirm %d events from fannode within %gs' % (n, RUN_TIMEOUT))
        self.sent = end
        return start, time.time(), end

    def close(self) -> None:
        self.events.close(1)


def amqp_missing(url: str) -> str | None:
    """Why the fannode amqp backend cannot be used, or None. Only a backend that is not
    there counts: any other failure fails the case."""
    from fannode.exceptions import UsageError
    from fannode.backends import load_backend
    try:
        load_backend('fannode.events', url)
    except UsageError as e:
        if 'no events backend' in str(e):
            return str(e)
        raise
    except ImportError as e:
        return 'cannot import fannode.events.amqp: %s' % e
    return None


def wait_done(proc: Proc, end: int, sleep: Callable[[float], None]) -> float:
    """The consumer's wall-clock time of its last ack of a run, from its "done END T" line."""
    # The line may come through the instance's log, prefixed: 'INFO Sink print [bench] done …'
    pattern = re.compile(r'\bdone %d ([\d.]+)$' % end, re.M)
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
        sleep(0.005)


def sink(ctx: Context, name: str, registry: str, events: str | None = None) -> Proc:
    argv = [*FANNODE, 'instance', '--registry', registry, '--config', str(BENCH / 'conf' / 'sink.yml')]
    return ctx.procs.start(name, argv + (['--events', events] if events else []), {'FANNODE_REGISTRY': registry},
                           SERVER)


def run(ctx: Context) -> list[Row]:
    import gevent  # the fannode emitters run under gevent; the raw side never yields to it

    from bench.rpc import quiet_interrupts
    quiet_interrupts()

    procs = ctx.procs
    ctx.step('starting a hub and its sink')
    hub_url = 'hub://127.0.0.1:%d' % free_port()
    procs.hub(hub_url, BROKER).wait_for('hub listening', START_TIMEOUT)  # the broker, like RabbitMQ
    consumers = {'hub': sink(ctx, 'hub-sink', hub_url)}
    why: dict[str, str] = {}
    amqp, missing = ctx.available(ctx.rabbitmq)
    if missing:
        why['raw'] = why['amqp'] = missing
    else:
        ctx.step('starting the consumers on RabbitMQ')
        consumers['raw'] = procs.start('pika-consumer', [sys.executable, str(BENCH / 'services' / 'pika_consumer.py'),
                                                         amqp], cpu=SERVER)
        missing = amqp_missing(amqp)
        if missing:
            why['amqp'] = missing
        else:
            # local:// discovery: nobody calls this instance, RabbitMQ is all it needs.
            consumers['amqp'] = sink(ctx, 'amqp-sink', 'local://bench', amqp)
    for key, proc in consumers.items():
        proc.wait_for('ready' if key == 'raw' else 'serving', START_TIMEOUT)
    publishers: dict[str, Any] = {'hub': FannodeEmitter(hub_url)}
    if 'raw' in consumers:
        publishers['raw'] = RawPika(amqp)
    if 'amqp' in consumers:
        publishers['amqp'] = FannodeEmitter(amqp)

    counts = {'hub': ctx.pick(20_000, 3000), 'raw': ctx.pick(3000, 500), 'amqp': ctx.pick(3000, 500)}
    confirmed: dict[str, list[float]] = {key: [] for key in publishers}

    def measure(key: str) -> Callable[[bool], float]:
        def one(warmup: bool) -> float:
            n = min(counts[key], ctx.pick(500, 100)) if warmup else counts[key]
            start, acked, end = publishers[key].publish(n)
            done = wait_done(consumers[key], end, gevent.sleep)
            if not warmup:
                confirmed[key].append(n / (acked - start))
            return n / (done - start)
        return one

    names = {'raw': 'raw pika', 'amqp': 'fannode amqp://', 'hub': 'fannode hub://'}
    s = ctx.rounds({names[key]: measure(key) for key in ('raw', 'amqp', 'hub') if key in publishers})
    for publisher in publishers.values():
        publisher.close()
    ctx.details.update({'events_per_run': counts, 'confirmed_per_s': confirmed})

    raw = s.get('raw pika')
    rows = [compare('hub', 'events end to end, hub backend', 'events/s', s['fannode hub://'], ANCHOR, raw,
                    at_least(TARGET), note='' if raw else 'skipped: %s' % why['raw'])]
    if 'amqp' in why:
        rows.append(skipped('amqp', 'events end to end, RabbitMQ backend', 'events/s', why['amqp'], ANCHOR,
                            at_least(TARGET)))
    else:
        rows.append(compare('amqp', 'events end to end, RabbitMQ backend', 'events/s', s['fannode amqp://'], ANCHOR,
                            raw, at_least(TARGET)))
    return rows
