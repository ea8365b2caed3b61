"""The `tail` case: `fannode tail --json` under load. A producer logs 5,000 lines a second,
shipped to the hub as an instance run by hand ships them ("via the hub"), or run as a
block of `fannode up`, whose hub they reach ("via the node"). One `fannode tail --json`
follows each. Per round: lines delivered to tail out of lines logged (in order, none
reported missing), the rate tail kept up with against the rate logged, and the CPU of
tail and of the hub (or the node). Target: every line delivered, at the rate logged.

The hub, the node, both tails and both producers start once; each round writes a `go`
file that a producer claims, logs its lines and waits for the next one.

    python -m bench.tail [--rate 5000] [--seconds 5] [--via-node]     one round, printed
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any

import psutil

from bench.procs import FANNODE, BenchError, Proc, Procs, free_port, side_by_side, wait_until
from bench.report import Row, Target, at_least, compare

RATE = 5000
START_TIMEOUT = 30.0
LATE = 30.0  # after the last line logged, how long tail may take to show it

PRODUCER = r'''
import logging, os, sys, time
import gevent
from fannode.core import logsetup
from fannode.logs.ship import Shipper, gevent_schedule
from fannode.hub.client import hub_endpoint
url, go, ship = sys.argv[1], sys.argv[2], sys.argv[3] == 'ship'  # else: stderr, the node forwards it
shipper = Shipper(hub_endpoint(url), gevent_schedule)
logsetup.setup('INFO', 'Loud', 'loud0001', ship=shipper.add if ship else None)
log = logging.getLogger('loud')
print('producer waiting', file=sys.__stdout__, flush=True)
while True:
    try:
        with open(go) as f:
            text = f.read()
        os.unlink(go)
    except FileNotFoundError:
        gevent.sleep(0.01)
        continue
    n, rate, seconds = int(text.split()[0]), int(text.split()[1]), float(text.split()[2])
    total, step, started = int(rate * seconds), max(1, rate // 100), time.monotonic()
    for i in range(0, total, step):
        for j in range(i, min(total, i + step)):
            log.info('round %d line %d', n, j)
        gevent.sleep(max(0.0, started + (i + step) / rate - time.monotonic()))  # hold the rate
    print('logged round %d: %d in %.2fs, dropped at source %d'
          % (n, total, time.monotonic() - started, shipper.dropped), file=sys.__stdout__, flush=True)
'''
LINE = re.compile(r'round (\d+) line (\d+)')


class Tail:
    """`fannode tail Loud --json -n 0`, its lines read by a thread and counted per round."""

    def __init__(self, procs: Procs, url: str):
        self.popen = subprocess.Popen([*FANNODE, 'tail', 'Loud', '--json', '-n', '0', '--registry', url],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                      env=procs.env, cwd=procs.dir, text=True, bufsize=1, start_new_session=True)
        self.lock = threading.Lock()
        self.rounds: dict[int, dict[str, Any]] = {}
        self.missing = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.popen.stdout:  # type: ignore[union-attr]
            m = LINE.search(line)
            with self.lock:
                if m is None:
                    self.missing += 'went missing' in line
                    continue
                n, i = int(m.group(1)), int(m.group(2))
                r = self.rounds.setdefault(n, {'got': 0, 'last': -1, 'out_of_order': 0, 'first': time.monotonic()})
                r['out_of_order'] += i != r['last'] + 1
                r['last'], r['got'], r['end'] = i, r['got'] + 1, time.monotonic()

    def round(self, n: int) -> dict[str, Any]:
        with self.lock:
            return dict(self.rounds.get(n, {'got': 0, 'out_of_order': 0}), missing=self.missing)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


class Path_:
    """One way for the lines to reach tail: its hub (or node), producer and tail."""

    def __init__(self, procs: Procs, via_node: bool):
        """Start the hub or the node; `ready` waits for it and starts the rest."""
        self.via_node, self.procs = via_node, procs
        self.dir = procs.dir / ('node' if via_node else 'hub')
        self.dir.mkdir(exist_ok=True)
        url = 'hub://127.0.0.1:%d' % free_port()
        script = self.dir / 'producer.py'
        script.write_text(PRODUCER)
        self.go = self.dir / 'go'
        self.url, self.argv = url, [sys.executable, str(script), url, str(self.go), 'stderr' if via_node else 'ship']
        self.server: Proc
        if via_node:  # the node runs the hub, and the producer as a block
            (self.dir / 'node.yml').write_text('registry: %s\ninstances:\n  loud:\n    command: %s\n'
                                               % (url, ' '.join(self.argv)))
            env = {name: str(self.dir) for name in ('XDG_RUNTIME_DIR', 'XDG_STATE_HOME')}  # its lock and journal
            self.server = procs.start('node', [*FANNODE, 'up', '--file', str(self.dir / 'node.yml')], env)
            self.server.grace = 30.0  # from SIGTERM, for its blocks to stop
        else:
            self.server = procs.hub(url)
        self.n = 0
        self.last: dict[str, Any] = {}

    def ready(self) -> None:
        """Wait for the hub (the node), start the producer (the node does) and tail."""
        if self.via_node:
            self.server.wait_for('cluster ready', START_TIMEOUT)
            self.producer = self.server
        else:
            self.server.wait_for('hub listening', START_TIMEOUT)
            self.producer = self.procs.start('producer', self.argv)
        self.producer.wait_for('producer waiting', START_TIMEOUT)
        self.tail = Tail(self.procs, self.url)
        # tail prints nothing until a line comes: a few lines, until it shows them, say it follows.
        wait_until(lambda: self.measure(1000, 0.01, late=0.5)['delivered'], START_TIMEOUT, 'fannode tail to follow',
                   0.0)

    def measure(self, rate: int, seconds: float, late: float = LATE) -> dict[str, Any]:
        """One round: `rate` lines a second for `seconds`, and what tail got of them."""
        self.n += 1
        n, expected = self.n, int(rate * seconds)
        tail_cpu, server_cpu = psutil.Process(self.tail.popen.pid), psutil.Process(self.server.pid)
        before = sum(tail_cpu.cpu_times()[:2]), sum(server_cpu.cpu_times()[:2])
        tmp = self.go.with_suffix('.tmp')
        tmp.write_text('%d %d %g' % (n, rate, seconds))
        os.replace(tmp, self.go)  # whole, never half written
        done = 'logged round %d:' % n
        wait_until(lambda: done in self.producer.output() or self._exited(), seconds + START_TIMEOUT,
                   'the producer to log round %d' % n, 0.05)
        if self.tail.popen.poll() is not None:
            raise BenchError('fannode tail exited with %s' % self.tail.popen.returncode)
        deadline = time.monotonic() + late
        while self.tail.round(n)['got'] < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        got = self.tail.round(n)
        after = sum(tail_cpu.cpu_times()[:2]), sum(server_cpu.cpu_times()[:2])
        elapsed = max(got.get('end', 0.0) - got.get('first', 0.0), seconds)
        logged = [line for line in self.producer.output().splitlines() if done in line][-1]
        self.last = {'path': 'via the node' if self.via_node else 'via the hub', 'rate': rate, 'logged': expected,
                     'delivered': got['got'], 'missing_reports': got['missing'], 'out_of_order': got['out_of_order'],
                     'seconds': round(elapsed, 2), 'delivered_per_s': round(got['got'] / elapsed),
                     'tail_cpu': round((after[0] - before[0]) / elapsed, 3),
                     ('node_cpu' if self.via_node else 'hub_cpu'): round((after[1] - before[1]) / elapsed, 3),
                     'producer': logged.split(': ', 1)[-1]}
        return self.last

    def _exited(self) -> bool:
        if self.server.popen.poll() is not None or self.producer.popen.poll() is not None:
            raise BenchError('%s exited: %s' % (self.producer.name, self.producer.last_line()))
        return False

    def stop(self) -> None:
        """Stop tail; the hub (the node: SIGTERM, it stops its blocks and its hub) and the
        producer stop with the case's other processes (`Procs.stop_all`)."""
        if hasattr(self, 'tail'):
            self.tail.stop()


def case(ctx: Any) -> list[Row]:
    """Rounds of 5,000 lines/s (5 s each, 1 s with --quick) through both paths, interleaved."""
    seconds = ctx.pick(5.0, 1.0)  # shorter, and a 30 ms lag at the end reads as 6% slower
    ctx.step('starting a hub, a node, their producers and tails')
    paths = {'hub': Path_(ctx.procs, False), 'node': Path_(ctx.procs, True)}  # starting side by side
    figures: dict[str, list[dict[str, Any]]] = {key: [] for key in paths}

    def measure(key: str) -> Any:
        def one(warmup: bool) -> float:
            got = paths[key].measure(RATE, ctx.pick(0.5, 0.2) if warmup else seconds)
            if not warmup:
                figures[key].append(got)
            return got['delivered_per_s']
        return one

    try:
        side_by_side([path.ready for path in paths.values()])
        s = ctx.rounds({'via the %s' % key: measure(key) for key in paths})
    finally:
        for path in paths.values():
            path.stop()
    ctx.details['tail'] = figures
    rows = []
    every = Target('≥', 100.0, 'value', '100% in order')
    for key, path in (('hub', 'via the hub'), ('node', 'via the node')):
        got = figures[key]
        server = 'node' if key == 'node' else 'hub'
        # A line out of order, or a gap tail reported, counts as not delivered.
        share = [100.0 * (g['delivered'] - g['out_of_order'] - g['missing_reports']) / g['logged'] for g in got]
        rows += [
            compare('%s.delivered' % key, 'fannode tail %s, %s lines/s: lines delivered' % (path, format(RATE, ',')),
                    '%', share, target=every),
            compare('%s.rate' % key, 'fannode tail %s: lines/s delivered' % path, 'lines/s',
                    s['via the %s' % key], 'lines/s logged', [float(g['rate']) for g in got], at_least(0.95)),
            compare('%s.tail_cpu' % key, 'fannode tail %s: CPU of tail' % path, '% CPU',
                    [100 * g['tail_cpu'] for g in got]),
            compare('%s.%s_cpu' % (key, server), 'fannode tail %s: CPU of the %s' % (path, server), '% CPU',
                    [100 * g['%s_cpu' % server] for g in got]),
        ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rate', type=int, default=RATE)
    parser.add_argument('--seconds', type=float, default=5.0)
    parser.add_argument('--via-node', action='store_true', help='the lines go through `fannode up`')
    args = parser.parse_args()
    procs = Procs()
    try:
        path = Path_(procs, args.via_node)
        try:
            path.ready()
            result = path.measure(args.rate, args.seconds)
        finally:
            path.stop()
    finally:
        procs.stop_all()
    for key, value in result.items():
        print('%-16s %s' % (key, value))
    ok = result['delivered'] == result['logged'] and not result['out_of_order']
    print('every line delivered, in order' if ok else 'LINES LOST OR OUT OF ORDER')
    if ok:
        procs.cleanup()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
