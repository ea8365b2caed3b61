"""The two timing loops, the same for every row: bench/rpc.py runs them for raw pyzmq and
fannode, bench/services/anchor_client.py for nameko and zerorpc in the anchors venv.
Standard library only at import: that venv has none of the project's dependencies, and
nameko's side runs under eventlet (gevent is imported by `in_flight` alone)."""
from __future__ import annotations

import time
from typing import Any, Callable


def sequential(call: Callable[[], Any], seconds: float) -> tuple[int, float]:
    """`call` back to back for `seconds`: (calls, seconds taken)."""
    calls = 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        call()
        calls += 1
        now = time.perf_counter()
        if now >= end:
            return calls, now - start


def in_flight(call: Callable[[], Any], concurrency: int, seconds: float, ramp: float) -> tuple[int, float]:
    """`concurrency` greenlets each looping the blocking `call`, so that many calls are
    always outstanding; counted for `seconds` once `ramp` seconds have passed. A failed
    call's exception is raised here, once the others have stopped."""
    import gevent
    count = 0
    running = True

    def worker() -> None:
        nonlocal count
        while running:
            call()
            count += 1

    workers = [gevent.spawn(worker) for _ in range(concurrency)]
    try:
        gevent.sleep(ramp)
        start_calls, start = count, time.perf_counter()
        gevent.sleep(seconds)
        end_calls, end = count, time.perf_counter()
    finally:
        running = False
        gevent.joinall(workers, timeout=5)
        gevent.killall(workers, block=False)
    for g in workers:
        if g.exception is not None:
            raise g.exception
    return end_calls - start_calls, end - start
