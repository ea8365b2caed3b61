"""`fannode tail` under load: a process logs N lines a second for a few seconds, shipped
to the hub as instances run by hand ship them, or (--via-node) written to stderr under
`fannode up`, which prints and forwards them. One `fannode tail --json` follows. The
figures: lines delivered to tail out of lines logged, lines tail said went missing, the
rate it kept up with, and the CPU of tail (and of the node). Target: 5,000 lines/s,
every line tail reports delivered.

    python -m bench.tail [--rate 5000] [--seconds 5] [--via-node]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

import psutil

from bench.procs import FANNODE, Procs, free_port, wait_until

PRODUCER = r'''
import logging, sys, time
import gevent
from fannode.core import logsetup
from fannode.logs.ship import Shipper, gevent_schedule
from fannode.hub.client import hub_endpoint
url, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])  # url: unused under a node
shipper = Shipper(hub_endpoint(url), gevent_schedule)
logsetup.setup('INFO', 'Loud', 'loud0001', ship=shipper.add)
log = logging.getLogger('loud')
total, step, started = int(rate * seconds), max(1, rate // 100), time.monotonic()
for i in range(0, total, step):
    for j in range(i, min(total, i + step)):
        log.info('line %d', j)
    gevent.sleep(max(0.0, started + (i + step) / rate - time.monotonic()))  # hold the rate
shipper.close()
print('logged %d in %.2fs, dropped at source %d' % (total, time.monotonic() - started, shipper.dropped),
      file=sys.__stdout__, flush=True)
'''


def measure(rate: int, seconds: float, via_node: bool = False) -> dict[str, Any]:
    procs = Procs()
    try:
        url = 'hub://127.0.0.1:%d' % free_port()
        script = procs.dir / 'producer.py'
        script.write_text(PRODUCER)
        producer_argv = [sys.executable, str(script), url, str(rate), str(seconds)]
        if via_node:  # the node runs the hub, and the producer once a file says so
            go = procs.dir / 'go'
            (procs.dir / 'node.yml').write_text(
                'registry: %s\ninstances:\n  loud:\n    command: sh -c \'while [ ! -e %s ]; do sleep 0.05; done; '
                'exec %s\'\n' % (url, go, ' '.join(producer_argv)))
            hub = procs.start('node', [*FANNODE, 'up'])
            hub.wait_for('cluster ready', 30)
        else:
            hub = procs.hub(url)
            hub.wait_for('hub listening', 15)
        tail = subprocess.Popen([*FANNODE, 'tail', 'Loud', '--json', '-n', '0', '--registry', url],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                env=procs.env, cwd=procs.dir, text=True, bufsize=1)
        try:
            time.sleep(1.0)  # tail's first exchange with the hub (it prints nothing until a line comes)
            cpu = psutil.Process(tail.pid)
            before = sum(cpu.cpu_times()[:2])
            node_cpu = psutil.Process(hub.pid)
            node_before = sum(node_cpu.cpu_times()[:2])
            if via_node:
                go.touch()
                producer = hub
            else:
                producer = procs.start('producer', producer_argv)
            started = time.monotonic()
            expected = int(rate * seconds)
            got, missing, last = 0, 0, -1
            out_of_order = 0
            deadline = started + seconds + 30
            while got < expected and time.monotonic() < deadline:
                line = tail.stdout.readline()
                if not line:
                    break
                if '"went missing' in line or 'went missing' in line:
                    missing += 1
                    continue
                if not got:
                    started = time.monotonic()  # the rate from the first line to the last
                n = int(line.rsplit('line ', 1)[1].split('"', 1)[0])
                out_of_order += n != last + 1
                last = n
                got += 1
            elapsed = time.monotonic() - started
            used = sum(cpu.cpu_times()[:2]) - before
            node_used = sum(node_cpu.cpu_times()[:2]) - node_before
            wait_until(lambda: 'logged' in producer.output(), 30, 'the producer to finish')
            return {'path': 'through fannode up' if via_node else 'shipped by the process',
                    'rate': rate, 'logged': expected, 'delivered': got, 'missing_reports': missing,
                    'out_of_order': out_of_order, 'seconds': round(elapsed, 2),
                    'delivered_per_s': round(got / elapsed), 'tail_cpu': round(used / elapsed, 3),
                    ('node_cpu' if via_node else 'hub_cpu'): round(node_used / elapsed, 3),
                    'producer': [line for line in producer.output().splitlines() if 'logged' in line][-1]}
        finally:
            tail.terminate()
            tail.wait(10)
    finally:
        procs.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rate', type=int, default=5000)
    parser.add_argument('--seconds', type=float, default=5.0)
    parser.add_argument('--via-node', action='store_true', help='the lines go through `fannode up`')
    args = parser.parse_args()
    result = measure(args.rate, args.seconds, args.via_node)
    for key, value in result.items():
        print('%-16s %s' % (key, value))
    ok = result['delivered'] == result['logged'] and not result['out_of_order']
    print('every line delivered, in order' if ok else 'LINES LOST OR OUT OF ORDER')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
