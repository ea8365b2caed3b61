"""The gateway case: HTTP/JSON calls per second through `fannode gateway` (wrk, POST
/rpc/Greeting/greet with a JSON body, 50 connections) beside RPC calls per second to the
same Greeting.greet made directly (a fannode client, 50 greenlets in flight), in
interleaved rounds. What the HTTP hop, JSON and the gateway's process cost. Without wrk
the case is skipped."""
from __future__ import annotations

import json
import subprocess
import sys

from bench.procs import BENCH, FANNODE, BenchError, free_port
from bench.report import Row, compare
from bench.runner import Context
from bench.web import CONNECTIONS, THREADS, Wrk, parse_wrk

START_TIMEOUT = 15.0
BODY = '{"name": "Joe"}'
POST = '''wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
''' % BODY

# 50 greenlets calling Greeting.greet for `seconds`: calls per second, every reply checked.
DIRECT = r'''
import json, sys, time
from gevent import monkey; monkey.patch_all()
import gevent, fannode
seconds, width = float(sys.argv[1]), int(sys.argv[2])
greet = fannode.proxy('Greeting').greet
assert greet(name='Joe') == 'Hi, Joe!'  # connected first: the connection is not what is measured
done = [0]
until = time.perf_counter() + seconds
def worker():
    while time.perf_counter() < until:
        if greet(name='Joe') != 'Hi, Joe!':
            raise SystemExit('a wrong reply')
        done[0] += 1
started = time.perf_counter()
gevent.joinall([gevent.spawn(worker) for _ in range(width)], raise_error=True)
print(json.dumps({'rate': done[0] / (time.perf_counter() - started)}))
'''


def direct(ctx: Context, url: str, seconds: float) -> float:
    env = dict(ctx.procs.env, FANNODE_REGISTRY=url)
    done = subprocess.run([sys.executable, '-c', DIRECT, str(seconds), str(CONNECTIONS)], env=env,
                          cwd=ctx.procs.dir, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise BenchError('direct calls failed: %s' % (done.stderr.strip().splitlines() or
                                                      ['exit %d' % done.returncode])[-1])
    return float(json.loads(done.stdout)['rate'])


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
    ctx.procs.hub(url).wait_for('hub listening', START_TIMEOUT)
    ctx.procs.instance(url, BENCH / 'conf' / 'greeting.yml').wait_for('serving', START_TIMEOUT)
    port = free_port()
    gateway = ctx.procs.start('gateway', [*FANNODE, 'gateway', '--registry', url, '--port', str(port)],
                              {'FANNODE_REGISTRY': url})
    gateway.wait_for('serving Gateway at', START_TIMEOUT)
    endpoint = 'http://127.0.0.1:%d/rpc/Greeting/greet' % port
    script = ctx.procs.dir / 'post.lua'
    script.write_text(POST)
    check = subprocess.run(['curl', '-sS', '-d', BODY, endpoint], capture_output=True, text=True, timeout=10)
    if check.stdout != '"Hi, Joe!"':
        raise BenchError('%s answered %r, expected "Hi, Joe!": %s' % (endpoint, check.stdout[:80], check.stderr))
    duration, warmup = ctx.pick(5, 1), ctx.pick(2, 1)
    s = ctx.rounds({
        'gateway': lambda w: through_gateway(wrk, str(script), endpoint, warmup if w else duration),
        'direct': lambda w: direct(ctx, url, warmup if w else duration),
    })
    ctx.details['gateway'] = 'wrk -t%d -c%d -s post.lua (POST %s); direct: %d greenlets, %d s per run' % (
        THREADS, CONNECTIONS, BODY, CONNECTIONS, duration)
    return [compare('vs_direct', 'gateway, POST /rpc/Greeting/greet (50 connections)', 'req/s', s['gateway'],
                    'direct RPC to Greeting.greet, 50 in flight', s['direct'])]
