"""bench.standin: many registered instances served by one process, for the views' cases.

`python -m bench.standin --registry URL --instances N [--serve]` registers N instances of
`Greeting` in the registry (the hub client: one registration per instance, heartbeats for
them all) and, with --serve, answers `get_metrics` and `ping` for each on an endpoint of its
own (one ROUTER socket per instance, all on this process's gevent loop). Without --serve
the endpoints are never bound: what `fannode discover` lists, no process behind them.

Each instance's `get_metrics` is the shape a real Greeting instance answers (calls, p99,
process figures), with its call count growing between polls so rates change and cells are
redrawn, as under load. Prints 'ready N' once all are registered.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from typing import Any, Callable

SERVICE = 'Greeting'


def metrics(index: int, started: float) -> dict[str, Any]:
    """A Greeting instance's get_metrics reply; its figures move with time."""
    now = time.monotonic()
    calls = int((now - started) * (5 + index % 7))
    p99 = 0.2 + (int(now) + index) % 5 * 0.05
    return {'rpc': {'%s.greet' % SERVICE: {
                'calls': calls, 'errors': calls // 500, 'deadline_exceeded': 0, 'mean_ms': 0.13,
                'p50_ms': 0.15, 'p90_ms': 0.21, 'p99_ms': round(p99, 3), 'max_ms': round(p99 + 0.1, 3),
                'sum_s': calls * 0.00013, 'buckets': [calls] + [0] * 14}},
            'event': {}, 'http': {}, 'custom': {},
            'process': {'pid': os.getpid(), 'rss': 40_000_000 + index * 4096, 'cpu_percent': 0.5 + index % 3 * 0.2,
                        'threads': 5, 'greenlets': 5, 'uptime': round(now - started, 3), 'gc': [87, 7, 0]}}


def resolver(index: int, started: float) -> Callable[[bytes, Any], Callable[[], Any]]:
    from fannode.exceptions import UnknownMethod

    def resolve(identity: bytes, msg: Any) -> Callable[[], Any]:
        method = msg.subject.rpartition('.')[2]
        if method == 'get_metrics':
            return lambda: metrics(index, started)
        if method == 'ping':
            return lambda: 'pong'
        raise UnknownMethod('the stand-in answers get_metrics and ping only')
    return resolve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench.standin', description=__doc__.split('\n\n')[0])
    parser.add_argument('--registry', required=True)
    parser.add_argument('--instances', type=int, required=True)
    parser.add_argument('--services', type=int, default=1, help='spread over this many services (Greeting, Svc1...)')
    parser.add_argument('--serve', action='store_true', help='answer get_metrics and ping on each endpoint')
    args = parser.parse_args(argv)

    from fannode.cli.base import patch_gevent
    patch_gevent()
    import gevent

    from fannode.core.instance import InstanceInfo
    from fannode.discovery import get_registry
    registry = get_registry(args.registry)
    started, host, servers = time.monotonic(), socket.gethostname(), []
    for index in range(args.instances):
        if args.serve:
            from fannode.zmqrpc.server import RpcServer
            server = RpcServer(resolver(index, started), pool_size=4)
            endpoint = server.bind()
            server.start()
            servers.append(server)
        else:
            endpoint = 'tcp://127.0.0.1:%d' % (20000 + index)
        service = SERVICE if index % args.services == 0 else 'Svc%d' % (index % args.services)
        registry.register(InstanceInfo(id='%08x%024x' % (index, index), endpoint=endpoint, services=[service],
                                       pid=os.getpid(), host=host, version='1.%d.0' % (index % 2),
                                       started=time.time(), meta={}))
    print('ready %d' % args.instances, flush=True)
    while True:
        gevent.sleep(60)


if __name__ == '__main__':
    sys.exit(main())
