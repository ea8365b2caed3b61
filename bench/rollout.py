"""The rollout case: a rolling replace under load. `fannode up` runs the workshop's
Greeting ×3 and Web ×2 (on a shared socket); bench/rollout_load.py calls Greeting.greet
(2 greenlets) and GET /greet (3 greenlets, Web calling Greeting) nonstop. Each round:
the load's rate in steady state, then node.yml's `version:` of both blocks changes and
the node replaces them one process at a time. The rows: requests per second during the
rollout against steady state, the failed requests (the target is none), and how long
the rollout took."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from bench.procs import BENCH, FANNODE, ROOT, BenchError, Proc, free_port, wait_until
from bench.report import Row, at_least, at_most, compare
from bench.runner import Context

TARGET_RATE = at_least(0.5)   # during a rollout ÷ steady: one process of three is always starting
TARGET_FAILED = at_most(0)    # failed calls and requests: none
START_TIMEOUT = 60.0
ROLLOUT_TIMEOUT = 120.0


def node_yml(url: str, port: int, version: str) -> str:
    return f'''registry: {url}
env:
  PYTHONPATH: {ROOT / 'services'}
sockets:
  web: {{host: 127.0.0.1, port: {port}}}
instances:
  greeting:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
    numprocesses: 3
    version: {version}
  web:
    command: fannode instance --config {ROOT / 'conf' / 'web.yml'}
    numprocesses: 2
    sockets: [web]
    depends_on: [greeting]
    version: {version}
'''


def save(path: Path, text: str) -> None:
    tmp = path.with_suffix('.tmp')  # a new inode, never half written, as editors save
    tmp.write_text(text)
    os.replace(tmp, path)


class Load:
    def __init__(self, ctx: Context, url: str, port: int):
        self.file = ctx.procs.dir / 'load.json'
        self.proc = ctx.procs.start('load', [sys.executable, str(BENCH / 'rollout_load.py'), url, str(port),
                                             str(self.file), '2', '3'])
        wait_until(lambda: self.ok() > 100, START_TIMEOUT, 'the load to get answers')

    def counts(self) -> dict:
        if self.proc.popen.poll() is not None:
            raise BenchError('the load exited: %s' % self.proc.last_line())
        try:
            return json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {'rpc_ok': 0, 'http_ok': 0, 'rpc_failed': 0, 'http_failed': 0, 'errors': []}

    def ok(self) -> int:
        counts = self.counts()
        return counts['rpc_ok'] + counts['http_ok']

    def failed(self) -> int:
        counts = self.counts()
        return counts['rpc_failed'] + counts['http_failed']


def rollout(node: Proc, path: Path, url: str, port: int, version: str) -> None:
    mark = len(node.output())
    save(path, node_yml(url, port, version))
    done = ['greeting: rolled out %s' % version, 'web: rolled out %s' % version]

    def finished() -> bool:
        if node.popen.poll() is not None:
            raise BenchError('the node exited: %s' % node.last_line())
        out = node.output()[mark:]
        if 'failed: ' in out and 'rolled back' in out:
            raise BenchError('the rollout to %s was rolled back: %s' % (version, node.last_line()))
        return all(text in out for text in done)
    wait_until(finished, ROLLOUT_TIMEOUT, 'the rollout to %s' % version)


def run(ctx: Context) -> list[Row]:
    for name in ('XDG_RUNTIME_DIR', 'XDG_STATE_HOME'):  # the node's lock, sockets and hub journal: the case's
        ctx.procs.env[name] = str(ctx.procs.dir)
    url, port = 'hub://127.0.0.1:%d' % free_port(), free_port()
    path = ctx.procs.dir / 'node.yml'
    save(path, node_yml(url, port, '1.0.0'))
    ctx.step('starting the node (Greeting ×3, Web ×2)')
    node = ctx.procs.start('node', [*FANNODE, 'up'])
    node.grace = 30.0  # SIGTERM: it stops its blocks, then itself
    node.wait_for('cluster ready', START_TIMEOUT)
    load = Load(ctx, url, port)
    steady, during, failed, took = [], [], [], []
    ctx.quiet()
    reps, window = ctx.pick(3, 1), ctx.pick(5.0, 1.0)
    for i in range(reps):
        ctx.step('round %d/%d: steady state' % (i + 1, reps))
        ok, t0 = load.ok(), time.monotonic()
        time.sleep(window)
        steady.append((load.ok() - ok) / (time.monotonic() - t0))
        version = '%d.0.0' % (i + 2)
        ctx.step('round %d/%d: rolling out %s' % (i + 1, reps, version))
        ok, bad, t0 = load.ok(), load.failed(), time.monotonic()
        rollout(node, path, url, port, version)
        seconds = time.monotonic() - t0
        during.append((load.ok() - ok) / seconds)
        failed.append(float(load.failed() - bad))
        took.append(seconds)
    errors = load.counts()['errors']
    ctx.details['rollout'] = {'errors': errors[:5]}
    # Its counts are read: SIGKILL, not a wait for calls in flight (up to their 10 s timeout), and
    # no connection left open to hold the web instances' graceful stop. The node stops with the
    # case's other processes, while the next case starts.
    load.proc.kill()
    ctx.say('  ✓ %.0f req/s in steady state, %.0f during rollouts, %d failed, %.1f s each' % (
        steady[-1], during[-1], sum(failed), took[-1]))
    return [compare('rate', 'requests/s during a rolling replace (RPC + HTTP)', 'req/s', during,
                    anchor='the same load in steady state', base=steady, target=TARGET_RATE),
            compare('failed', 'failed requests during a rolling replace', 'requests', failed, target=TARGET_FAILED),
            compare('seconds', 'rolling replace of Greeting ×3 then Web ×2', 's', took)]
