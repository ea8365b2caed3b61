"""Cluster-wide unique ids from a hub process: ids per second drawn by one process, with
its usual blocks (most calls stay in the process) and with a block per id (every call a
trip to the hub and a journal commit), the cost the blocks save. No anchor: none of the
anchor projects has unique ids."""
from __future__ import annotations

import sys

from bench.anchors import PipeClient
from bench.procs import SERVER, free_port
from bench.report import Row, compare
from bench.runner import Context

# Draws as many ids as each stdin line says (or fewer, when its time limit comes first); one
# JSON line of calls and seconds back. One process per block size for the case, asked every
# round (a process a round cost seconds).
DRAW = r'''
import json, sys, time, fannode
from gevent import select  # waits without blocking the client's own greenlets
fannode.unique_id('warm')  # connect first: the connection is not what is measured
print(json.dumps({'ready': True}), flush=True)
while select.select([sys.stdin], [], [])[0]:
    line = sys.stdin.readline()
    if not line:
        break
    count, limit = int(line.split()[0]), float(line.split()[1])
    started = time.perf_counter()
    until, done = started + limit, 0
    while done < count:
        for _ in range(min(100, count - done)):
            fannode.unique_id('orders')
        done += min(100, count - done)
        if time.perf_counter() > until:
            break
    print(json.dumps({'calls': done, 'seconds': time.perf_counter() - started}), flush=True)
'''


def drawer(ctx: Context, url: str, batch: int) -> PipeClient:
    return PipeClient(ctx.procs, 'draw-%d' % batch, [sys.executable, '-c', DRAW],
                      {'FANNODE_REGISTRY': url, 'FANNODE_ID_BATCH': str(batch)})


def run(ctx: Context) -> list[Row]:
    url = 'hub://127.0.0.1:%d' % free_port()
    ctx.step('starting a hub')
    ctx.procs.hub(url, SERVER).wait_for('hub listening', 15)  # the server here; the drawer inherits our CPU
    by_block, by_id = drawer(ctx, url, 100), drawer(ctx, url, 1)
    for client in (by_block, by_id):
        client.ask(None, 30)
    blocks, trips = [], []
    ctx.quiet()
    for i in range(ctx.reps()):
        ctx.step('round %d/%d: unique ids' % (i + 1, ctx.reps()))
        # --quick: a count, or half a second on a loaded machine (a hub trip took 1 to 5 ms)
        blocks.append(by_block.rate('%d %g' % ctx.pick((200_000, 600), (20_000, 0.5)), 120))
        trips.append(by_id.rate('%d %g' % ctx.pick((5_000, 600), (1_000, 0.5)), 120))
    ctx.say('  ✓ unique ids: %.0f/s in blocks of 100, %.0f/s with a hub trip each' % (blocks[-1], trips[-1]))
    return [compare('blocks', 'unique ids, blocks of 100 (one process)', 'ids/s', blocks),
            compare('trips', 'unique ids, one hub trip each', 'ids/s', trips)]
