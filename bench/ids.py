"""Cluster-wide unique ids from a hub process: ids per second drawn by one process, with
its usual blocks (most calls stay in the process) and with a block per id (every call a
trip to the hub and a journal commit), the cost the blocks save. No anchor: none of the
anchor projects has unique ids."""
from __future__ import annotations

import json
import subprocess
import sys

from bench.procs import BenchError, free_port
from bench.report import Row, compare
from bench.runner import ROUNDS, Context

DRAW = r'''
import json, sys, time, fannode
count = int(sys.argv[1])
fannode.unique_id('warm')  # connect first: the connection is not what is measured
started = time.perf_counter()
for _ in range(count):
    fannode.unique_id('orders')
print(json.dumps({'rate': count / (time.perf_counter() - started)}))
'''


def draw(ctx: Context, url: str, count: int, batch: int) -> float:
    env = dict(ctx.procs.env, FANNODE_REGISTRY=url, FANNODE_ID_BATCH=str(batch))
    done = subprocess.run([sys.executable, '-c', DRAW, str(count)], env=env, cwd=ctx.procs.dir,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise BenchError('drawing ids failed: %s' % (done.stderr.strip().splitlines() or ['exit %d' % done.returncode])[-1])
    return float(json.loads(done.stdout)['rate'])


def run(ctx: Context) -> list[Row]:
    url = 'hub://127.0.0.1:%d' % free_port()
    ctx.step('starting a hub')
    ctx.procs.hub(url).wait_for('hub listening', 15)
    blocks, trips = [], []
    for i in range(ROUNDS):
        ctx.step('round %d/%d: unique ids' % (i + 1, ROUNDS))
        blocks.append(draw(ctx, url, ctx.pick(200_000, 20_000), 100))
        trips.append(draw(ctx, url, ctx.pick(5_000, 1_000), 1))
    ctx.say('  ✓ unique ids: %.0f/s in blocks of 100, %.0f/s with a hub trip each' % (blocks[-1], trips[-1]))
    return [compare('blocks', 'unique ids, blocks of 100 (one process)', 'ids/s', blocks),
            compare('trips', 'unique ids, one hub trip each', 'ids/s', trips)]
