"""The gateway case: HTTP/JSON calls per second through `fannode gateway` (wrk, POST
/rpc/Greeting/greet with a JSON body, 50 connections) beside RPC calls per second to the
same Greeting.greet made directly (a fannode client, 50 greenlets in flight), in
interleaved rounds. What the HTTP hop, JSON and the gateway's process cost. Without wrk
the case is skipped."""
from __future__ import annotations

import http.client
import subprocess
import sys

from bench.anchors import PipeClient
from bench.procs import BENCH, BROKER, CLIENT, FANNODE, SERVER, BenchError, free_port
from bench.report import Row, compare
from bench.runner import Context
from bench.web import CONNECTIONS, THREADS, Wrk, parse_wrk

START_TIMEOUT = 15.0
QUICK_WARMUP = 100  # POSTs, in --quick instead of a 1 s wrk run
BODY = '{"name": "Joe"}'
POST = '''wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
''' % BODY

# 50 greenlets calling Greeting.greet for the seconds each stdin line says: one JSON line of
# calls and seconds back, every reply checked. One process for the case, asked every round.
DIRECT = r'''
import json, select, sys, time
from gevent import monkey; monkey.patch_all()
import gevent, fannode
width = int(sys.argv[1])
greet = fannode.proxy('Greeting').greet
assert greet(name='Joe') == 'Hi, Joe!'  # connected first: the connection is not what is measured
print(json.dumps({'ready': True}), flush=True)
while select.select([sys.stdin], [], [])[0]:  # gevent's select: the client's own greenlets run meanwhile
    line = sys.stdin.readline()
    if not line:
        break
    done = [0]
    until = time.perf_counter() + float(line)
    def worker():
        while time.perf_counter() < until:
            if greet(name='Joe') != 'Hi, Joe!':
                raise SystemExit('a wrong reply')
            done[0] += 1
    started = time.perf_counter()
    gevent.joinall([gevent.spawn(worker) for _ in range(width)], raise_error=True)
    print(json.dumps({'calls': done[0], 'seconds': time.perf_counter() - started}), flush=True)
'''


def post(port: int) -> None:
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5.0)
    try:
        conn.request('POST', '/rpc/Greeting/greet', BODY, {'Content-Type': 'application/json'})
        response = conn.getresponse()
        if response.read() != b'"Hi, Joe!"':
            raise BenchError('POST /rpc/Greeting/greet answered %d during the warm-up' % response.status)
    finally:
        conn.close()


def direct(client: PipeClient, seconds: float) -> float:
    return client.rate(str(seconds), seconds + 60)


def through_gateway(wrk: Wrk, script: str, url: str, seconds: int) -> float:
    argv = [str(wrk.path), '-t%d' % THREADS, '-c%d' % CONNECTIONS, '-d%ds' % seconds, '--latency', '-s', script, url]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise BenchError('wrk did not finish %ds of load on %s' % (seconds, url)) from None
    if done.returncode != 0:
        raise BenchError('wrk failed on %s: %s' % (url, done.stderr.strip() or 'exit %d' % done.returncode))
    figures = parse_wrk(done.stdout)
    if figures['requests'] == 0 or figures['errors']:
        raise BenchError('%s: %d errors in %d requests under wrk' % (url, figures['errors'], figures['requests']))
    return figures['per_second']


def run(ctx: Context) -> list[Row]:
    ctx.missing('wrk')
    wrk = Wrk(THREADS, CONNECTIONS)
    ctx.step('starting a hub, Greeting and the gateway')
    url = 'hub://127.0.0.1:%d' % free_port()
    ctx.procs.hub(url, BROKER).wait_for('hub listening', START_TIMEOUT)
    instance = ctx.procs.instance(url, BENCH / 'conf' / 'greeting.yml', SERVER)
    port = free_port()
    gateway = ctx.procs.start('gateway', [*FANNODE, 'gateway', '--registry', url, '--port', str(port)],
                              {'FANNODE_REGISTRY': url}, CLIENT)  # Greeting's caller, as the direct client is
    instance.wait_for('serving', START_TIMEOUT)  # the gateway meanwhile starts; the client calls at once
    client = PipeClient(ctx.procs, 'direct-client', [sys.executable, '-c', DIRECT, str(CONNECTIONS)],
                        {'FANNODE_REGISTRY': url})
    gateway.wait_for('serving Gateway at', START_TIMEOUT)
    endpoint = 'http://127.0.0.1:%d/rpc/Greeting/greet' % port
    script = ctx.procs.dir / 'post.lua'
    script.write_text(POST)
    check = subprocess.run(['curl', '-sS', '-d', BODY, endpoint], capture_output=True, text=True, timeout=10)
    if check.stdout != '"Hi, Joe!"':
        raise BenchError('%s answered %r, expected "Hi, Joe!": %s' % (endpoint, check.stdout[:80], check.stderr))
    duration, warmup = ctx.pick(5, 1), ctx.pick(2, 1)
    client.ask(None, START_TIMEOUT)

    def gateway_run(w: bool) -> float:
        if w and ctx.quick:  # wrk's floor is 1 s a run: warm up with plain requests instead
            for _ in range(QUICK_WARMUP):
                post(port)
            return 0.0
        return through_gateway(wrk, str(script), endpoint, warmup if w else duration)
    s = ctx.rounds({
        'gateway': gateway_run,
        'direct': lambda w: direct(client, ctx.pick(warmup, 0.1) if w else ctx.pick(duration, 0.5)),
    })
    ctx.details['gateway'] = 'wrk -t%d -c%d -s post.lua (POST %s); direct: %d greenlets, %d s per run' % (
        THREADS, CONNECTIONS, BODY, CONNECTIONS, duration)
    return [compare('vs_direct', 'gateway, POST /rpc/Greeting/greet (50 connections)', 'req/s', s['gateway'],
                    'direct RPC to Greeting.greet, 50 in flight', s['direct'])]
