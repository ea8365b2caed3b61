"""Load for the bench's rollout case and tests/e2e/test_rollout_node.py: greenlets calling
Greeting.greet over RPC and GET /greet over HTTP nonstop, counting successes and
failures. Run as a process of its own (gevent stays out of pytest):

    python rollout_load.py HUB_URL WEB_PORT STATUS_FILE [RPC_WORKERS HTTP_WORKERS]

The counts go to STATUS_FILE (JSON, replaced atomically) every 0.1 s; it stops on SIGTERM
or SIGINT after writing them a last time."""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402


def main() -> None:
    hub, port, status_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rpc_workers = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    http_workers = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    from fannode.calls.client import RpcClient
    from fannode.discovery import get_registry
    client = RpcClient(get_registry(hub))
    proxy = client.proxy('Greeting', timeout=10)
    counts = {'rpc_ok': 0, 'rpc_failed': 0, 'http_ok': 0, 'http_failed': 0}
    errors: list[str] = []
    stop = Event()

    def failed(kind: str, e: BaseException) -> None:
        counts[kind] += 1
        if len(errors) < 20:
            errors.append('%.3f %s: %s: %s' % (time.time(), kind, type(e).__name__, e))

    def rpc(i: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if proxy.greet(name='r%d-%d' % (i, n)) != 'Hi, r%d-%d!' % (i, n):
                    raise ValueError('a wrong reply')
                counts['rpc_ok'] += 1
            except Exception as e:
                failed('rpc_failed', e)
                gevent.sleep(0.01)

    def http(i: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            url = 'http://127.0.0.1:%d/greet?name=h%d-%d' % (port, i, n)
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    if response.status != 200 or response.read() != b'Hi, h%d-%d!' % (i, n):
                        raise ValueError('status %d' % response.status)
                counts['http_ok'] += 1
            except Exception as e:
                failed('http_failed', e)
                gevent.sleep(0.01)

    def write() -> None:
        tmp = status_file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump({**counts, 'errors': errors, 'time': time.time()}, f)
        os.replace(tmp, status_file)

    workers = [gevent.spawn(rpc, i) for i in range(rpc_workers)]
    workers += [gevent.spawn(http, i) for i in range(http_workers)]
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    while not stop.wait(0.1):
        write()
    gevent.joinall(workers, timeout=15)
    write()
    os._exit(0)  # the client's sockets need no goodbye


if __name__ == '__main__':
    main()
