"""The RPC cases: fannode calls beside raw pyzmq REQ/REP, a zmq.green DEALER/ROUTER pair,
zerorpc and nameko (`rpc`), the idle RSS of each server after those calls, and the RPC
latency of 100 B to 1 MB bodies beside raw pyzmq (`payload`).

The raw anchor uses plain blocking pyzmq; fannode's rows use the real client (under
gevent) exactly as service code calls another service: `proxy.greet(name='Joe')`.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any, Callable

import gevent
import msgpack
import psutil
import zmq
from gevent.event import AsyncResult

from bench import loops
from bench.anchors import AnchorClient
from bench.procs import BENCH, BROKER, SERVER, BenchError, Proc, free_port, memory
from bench.report import Row, Target, at_least, at_most, compare, skipped
from bench.runner import Context

REQUEST = {'name': 'Joe'}
REPLY = 'Hi, Joe!'
START_TIMEOUT = 15.0
RAMP = 0.1         # seconds for the in-flight calls to fill the pipe before counting
CONCURRENCY = 50
MiB = 1024 * 1024
TARGET_RSS_MIB = 40.0
SIZES = ((100, '100 B'), (10_000, '10 KB'), (1_000_000, '1 MB'))


class RawClient:
    """A REQ socket to the raw REP server; msgpack on both sides, like fannode."""

    def __init__(self, endpoint: str):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, 5000)
        self.socket.connect(endpoint)

    def call(self, request: dict[str, Any] = REQUEST) -> Any:
        try:
            self.socket.send(msgpack.packb(request))
            return msgpack.unpackb(self.socket.recv())
        except zmq.Again:
            raise BenchError('the raw REP server did not answer within 5s') from None

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


class GreenClient:
    """A zmq.green DEALER, as one writes it by hand under gevent: each call sends [id,
    body] and waits on an AsyncResult; one reader greenlet hands each reply to its caller
    by id, so any number of greenlets can call at once."""

    def __init__(self, endpoint: str):
        import zmq.green as green
        self.context = green.Context()
        self.socket = self.context.socket(green.DEALER)
        self.socket.setsockopt(green.LINGER, 0)
        self.socket.connect(endpoint)
        self.pending: dict[bytes, AsyncResult] = {}
        self.ids = itertools.count()
        self.reader = gevent.spawn(self._read)

    def _read(self) -> None:
        while True:
            request_id, body = self.socket.recv_multipart()
            result = self.pending.pop(request_id, None)
            if result is not None:
                result.set(body)

    def call(self, request: dict[str, Any] = REQUEST) -> Any:
        request_id = next(self.ids).to_bytes(8, 'little')
        result = self.pending[request_id] = AsyncResult()
        self.socket.send_multipart([request_id, msgpack.packb(request)])
        try:
            return msgpack.unpackb(result.get(timeout=5))
        except gevent.Timeout:
            self.pending.pop(request_id, None)
            raise BenchError('the zmq.green ROUTER server did not answer within 5s') from None

    def close(self) -> None:
        self.reader.kill()
        self.socket.close(linger=0)
        self.context.term()


def check(name: str, call: Callable[[], Any]) -> None:
    reply = call()
    if reply != REPLY:
        raise BenchError('%s answered %r, expected %r' % (name, reply, REPLY))


def rate(counted: tuple[int, float]) -> float:
    calls, seconds = counted
    return calls / seconds


def sequential(call: Callable[[], Any], seconds: float) -> float:
    """Calls per second, `call` back to back for `seconds`."""
    return rate(loops.sequential(call, seconds))


def in_flight(call: Callable[[], Any], seconds: float, ramp: float = RAMP) -> float:
    """Calls per second with CONCURRENCY greenlets each looping the blocking `call`,
    counted once `ramp` seconds have passed."""
    try:
        return rate(loops.in_flight(call, CONCURRENCY, seconds, ramp))
    except Exception as e:  # a call failed in one of the greenlets
        raise BenchError('a call failed: %s: %s' % (type(e).__name__, e)) from None


def quiet_interrupts() -> None:
    """Ctrl-C (or SIGTERM) caught in a greenlet still reaches the main one, which cleans
    up; it just need not print a traceback on the way."""
    hub = gevent.get_hub()
    if KeyboardInterrupt not in hub.NOT_ERROR:
        hub.NOT_ERROR = tuple(hub.NOT_ERROR) + (KeyboardInterrupt,)


def rss(proc: Proc) -> float:
    try:
        return psutil.Process(proc.pid).memory_info().rss / MiB
    except psutil.NoSuchProcess:
        raise BenchError('%s (pid %d) exited: %s' % (proc.name, proc.pid, proc.last_line())) from None


class Servers:
    """The raw REP server and fannode (a hub, one instance of bench/services/greeting.py,
    the client in this process), started side by side and checked."""

    def __init__(self, ctx: Context):
        from fannode.discovery import get_registry
        from fannode.calls.client import RpcClient
        quiet_interrupts()
        procs = ctx.procs
        ctx.step('starting the raw REP server, a hub and an instance')
        raw_port = free_port()
        raw = procs.raw_server(raw_port)
        url = 'hub://127.0.0.1:%d' % free_port()
        hub = procs.hub(url, BROKER)
        hub.wait_for('hub listening', START_TIMEOUT)
        self.instance = procs.instance(url, BENCH / 'conf' / 'greeting.yml', SERVER)
        raw.wait_for('ready', START_TIMEOUT)
        self.instance.wait_for('serving', START_TIMEOUT)
        self.client = RpcClient(get_registry(url))
        if not self.client.registry.lookup('Greeting'):
            raise BenchError('the instance says it is serving, but the hub at %s does not list it' % url)
        self.proxy = self.client.proxy('Greeting')
        self.raw = RawClient('tcp://127.0.0.1:%d' % raw_port)
        check('the raw REP server', self.raw.call)
        check('fannode', self.fannode)

    def fannode(self) -> Any:
        return self.proxy.greet(**REQUEST)

    def close(self) -> None:
        self.raw.close()
        self.client.close()
        self.client.registry.close()  # or it keeps asking the hub, which the case stops next


def start_anchors(ctx: Context) -> tuple[dict[str, AnchorClient], dict[str, Proc], dict[str, str]]:
    """zerorpc's server and client, and nameko's service and client, in the anchors
    venv: the clients, the servers (for their RSS) and why any is missing."""
    procs = ctx.procs
    anchors: dict[str, AnchorClient] = {}
    rss_of: dict[str, Proc] = {}
    why: dict[str, str] = {}
    python, missing = ctx.available(ctx.anchors)
    if missing:
        why['zerorpc'] = why['nameko'] = missing
        return anchors, rss_of, why
    ctx.step('starting zerorpc')
    port = free_port()
    rss_of['zerorpc'] = procs.start('zerorpc-server', [python, str(BENCH / 'services' / 'zerorpc_greeting.py'),
                                                       str(port)], cpu=SERVER)
    amqp, missing = ctx.available(ctx.rabbitmq)
    if not missing:  # both servers boot at once; each client starts once its server is ready
        ctx.step('starting nameko')
        rss_of['nameko'] = procs.start('nameko-service', [str(Path(python).parent / 'nameko'), 'run', '--broker',
                                                          amqp, 'nameko_greeting:Greeting'], cpu=SERVER)
    rss_of['zerorpc'].wait_for('ready', START_TIMEOUT)
    anchors['zerorpc'] = AnchorClient(procs, 'zerorpc', python, 'tcp://127.0.0.1:%d' % port)
    if missing:
        why['nameko'] = missing
        return anchors, rss_of, why
    rss_of['nameko'].wait_for('Connected to amqp', START_TIMEOUT)
    anchors['nameko'] = AnchorClient(procs, 'nameko', python, amqp)
    return anchors, rss_of, why


def run(ctx: Context) -> list[Row]:
    """Calls per second, sequential and 50 in flight, for fannode and each anchor, in
    interleaved rounds; then the idle RSS of each server."""
    servers = Servers(ctx)
    procs = ctx.procs
    green_port = free_port()
    green_server = procs.start('green-server', [sys.executable, '-m', 'bench.green_server', str(green_port)],
                               cpu=SERVER)
    bare = procs.start('bare-python', [sys.executable, '-c', 'import time; time.sleep(3600)'])
    anchors, rss_of, why = start_anchors(ctx)
    green_server.wait_for('ready', START_TIMEOUT)
    green = GreenClient('tcp://127.0.0.1:%d' % green_port)
    check('the zmq.green ROUTER server', green.call)
    for kind, client in anchors.items():
        client.ask(None, START_TIMEOUT)
        check(kind, lambda: client.ask('check', START_TIMEOUT)['reply'])
    ctx.say('  ✓ raw REP, zmq.green ROUTER, fannode instance pid %d%s' % (
        servers.instance.pid, ''.join(', %s pid %d' % (k, p.pid) for k, p in rss_of.items())))

    part = ctx.pick(1.0, 0.1)
    warm = ctx.pick(0.5, 0.05)

    ramp = ctx.pick(RAMP, 0.05)

    def seconds(warmup: bool) -> float:
        return warm if warmup else part

    measures: dict[str, Callable[[bool], float]] = {
        'raw sequential': lambda w: sequential(servers.raw.call, seconds(w)),
        'zmq.green sequential': lambda w: sequential(green.call, seconds(w)),
        'zmq.green in flight': lambda w: in_flight(green.call, seconds(w), ramp),
        'fannode sequential': lambda w: sequential(servers.fannode, seconds(w)),
        'fannode in flight': lambda w: in_flight(servers.fannode, seconds(w), ramp),
    }
    for kind, client in anchors.items():
        measures['%s sequential' % kind] = lambda w, c=client: c.rate('sequential %g' % seconds(w), 60 + part)
        measures['%s in flight' % kind] = lambda w, c=client: c.rate(
            'in_flight %d %g %g' % (CONCURRENCY, seconds(w), ramp), 60 + part)
    s = ctx.rounds(measures)
    green.close()
    servers.close()

    def row(key: str, what: str, fannode: list[float], anchor: str, measured: str, target: Target | None = None) -> Row:
        kind = measured.split()[0]  # 'zerorpc sequential' → zerorpc
        if kind in why:
            return skipped(key, what, 'calls/s', why[kind], anchor, target)
        return compare(key, what, 'calls/s', fannode, anchor, s[measured], target)

    seq, fly = s['fannode sequential'], s['fannode in flight']
    flying = '%d in flight' % CONCURRENCY
    rows = [
        row('sequential.raw', 'RPC sequential', seq, 'raw pyzmq REQ/REP, sequential', 'raw sequential', at_least(0.6)),
        row('sequential.green', 'RPC sequential', seq, 'zmq.green DEALER/ROUTER, sequential', 'zmq.green sequential'),
        row('sequential.zerorpc', 'RPC sequential', seq, 'zerorpc, sequential', 'zerorpc sequential', at_least(3.0)),
        row('sequential.nameko', 'RPC sequential', seq, 'nameko ClusterRpcProxy, sequential', 'nameko sequential',
            at_least(5.0)),
        row('in_flight.raw', 'RPC ' + flying, fly, 'raw pyzmq REQ/REP, sequential', 'raw sequential', at_least(1.5)),
        row('in_flight.green', 'RPC ' + flying, fly, 'zmq.green DEALER/ROUTER, ' + flying, 'zmq.green in flight'),
        row('in_flight.zerorpc', 'RPC ' + flying, fly, 'zerorpc, ' + flying, 'zerorpc in flight'),
        row('in_flight.nameko', 'RPC ' + flying, fly, 'nameko ClusterRpcProxy, %s (call_async)' % flying,
            'nameko in flight'),
    ]
    return rows + idle_rss(ctx, servers.instance, bare, rss_of, why)


def idle_rss(ctx: Context, instance: Proc, bare: Proc, anchors: dict[str, Proc], why: dict[str, str]) -> list[Row]:
    """RSS of each server after the rounds and a second without calls: fannode's
    instance beside a bare Python, and the anchors' servers, which served the same calls."""
    ctx.step('idle RSS')
    gevent.sleep(ctx.pick(1.0, 0.3))  # gevent: the client's greenlets, if any, still run
    # RSS (the target), PSS and USS (bench.procs.memory), three samples of each process.
    samples: dict[str, list[dict[str, float]]] = {'fannode': [], 'bare': [], **{k: [] for k in anchors}}
    for _ in range(3):
        for name, proc in (('fannode', instance), ('bare', bare), *anchors.items()):
            rss(proc)  # the error names the process that exited
            samples[name].append(memory(proc.pid))
        gevent.sleep(0.1)
    rows = []
    for kind in ('rss', 'pss', 'uss'):
        what, target = 'idle instance %s' % kind.upper(), at_most(TARGET_RSS_MIB) if kind == 'rss' else None
        mine = [m[kind] for m in samples['fannode']]
        rows.append(compare(kind + '.bare', what, 'MiB', mine, "bare python -c 'import time; time.sleep(…)'",
                            [m[kind] for m in samples['bare']], target))
        for anchor, name in (('nameko', 'idle nameko service (nameko run)'), ('zerorpc', 'idle zerorpc.Server')):
            if anchor in anchors:
                rows.append(compare('%s.%s' % (kind, anchor), what, 'MiB', mine, name,
                                    [m[kind] for m in samples[anchor]], target))
            else:
                rows.append(skipped('%s.%s' % (kind, anchor), what, 'MiB', why[anchor], name, target))
    return rows


def payload(ctx: Context) -> list[Row]:
    """Latency of one sequential echo call of 100 B, 10 KB and 1 MB, fannode beside raw
    pyzmq with the same bytes: fannode's cost should grow with the size no faster than
    the bare round trip's."""
    servers = Servers(ctx)
    part, warm = ctx.pick(1.0, 0.1), ctx.pick(0.5, 0.05)
    measures: dict[str, Callable[[bool], float]] = {}
    for size, label in SIZES:
        body = bytes(size)

        def raw(w: bool, body: bytes = body) -> float:
            return 1e6 / sequential(lambda: servers.raw.call({'body': body}), warm if w else part)

        def fannode(w: bool, body: bytes = body) -> float:
            return 1e6 / sequential(lambda: servers.proxy.echo(body=body), warm if w else part)

        for name, call in (('raw', servers.raw.call), ('fannode', servers.proxy.echo)):
            reply = call({'body': body}) if name == 'raw' else call(body=body)
            if reply != body:
                raise BenchError('%s echoed %d bytes of %d' % (name, len(reply), size))
        measures['raw %s' % label] = raw
        measures['fannode %s' % label] = fannode
    s = ctx.rounds(measures)
    servers.close()

    rows = []
    for size, label in SIZES:
        target = None
        if rows:  # the larger sizes: relative cost no worse than at 100 B
            base = rows[0].ratio.median
            target = Target('≤', base, 'ratio', '≤ %.2f× (as 100 B)' % base)
        rows.append(compare('echo.%d' % size, 'RPC latency, %s echo' % label, 'µs', s['fannode %s' % label],
                            'raw pyzmq REQ/REP, same bytes', s['raw %s' % label], target))
    return rows
