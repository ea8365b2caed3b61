"""The measurements. Each one warms up, then counts round trips for a fixed time.

The raw anchor uses plain blocking pyzmq; the fannode ones use the real client
(zmq.green under gevent), as a service or script calling another service would.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import gevent
import msgpack
import psutil
import zmq

from bench.procs import BenchError

REQUEST = {'name': 'Joe'}
REPLY = 'Hi, Joe!'
MiB = 1024 * 1024


@dataclasses.dataclass
class Rate:
    calls: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def _timed(call: Callable[[], Any], duration: float) -> Rate:
    """Call `call` back to back for `duration` seconds."""
    calls = 0
    start = time.perf_counter()
    end = start + duration
    while True:
        call()
        calls += 1
        now = time.perf_counter()
        if now >= end:
            return Rate(calls, now - start)


def _check(reply: Any) -> None:
    if reply != REPLY:
        raise BenchError('unexpected reply %r (expected %r)' % (reply, REPLY))


def raw_sequential(endpoint: str, duration: float, warmup: float) -> Rate:
    """REQ/REP round trips, one at a time, msgpack on both sides."""
    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, 5000)
    socket.connect(endpoint)
    packb, unpackb = msgpack.packb, msgpack.unpackb

    def call() -> Any:
        socket.send(packb(REQUEST))
        return unpackb(socket.recv())

    try:
        try:
            _check(call())
            _timed(call, warmup)
            return _timed(call, duration)
        except zmq.Again:
            raise BenchError('the raw REP server did not answer within 5s') from None
    finally:
        socket.close(linger=0)
        context.term()


def fannode_sequential(proxy: Any, duration: float, warmup: float) -> Rate:
    """`proxy.greet(name='Joe')`, one at a time."""
    greet = proxy.greet
    _check(greet(**REQUEST))
    call = lambda: greet(**REQUEST)  # noqa: E731
    _timed(call, warmup)
    return _timed(call, duration)


def fannode_in_flight(proxy: Any, concurrency: int, duration: float, warmup: float) -> Rate:
    """`concurrency` greenlets each looping the blocking call, so that many are always
    outstanding; counted over `duration` after `warmup`, in steady state."""
    greet = proxy.greet
    count = 0
    running = True

    def worker() -> None:
        nonlocal count
        while running:
            greet(**REQUEST)
            count += 1

    workers = [gevent.spawn(worker) for _ in range(concurrency)]
    try:
        gevent.sleep(warmup)
        _raise_failure(workers)
        start_calls, start = count, time.perf_counter()
        gevent.sleep(duration)
        end_calls, end = count, time.perf_counter()
        _raise_failure(workers)
    finally:
        running = False
        gevent.joinall(workers, timeout=5)
        gevent.killall(workers, block=False)
    _raise_failure(workers)
    return Rate(end_calls - start_calls, end - start)


def _raise_failure(workers: list[gevent.Greenlet]) -> None:
    for g in workers:
        if g.ready() and g.exception is not None:
            raise BenchError('a call failed: %s: %s' % (type(g.exception).__name__, g.exception))


def idle_rss(pid: int, idle: float) -> float:
    """RSS in MiB of process `pid` after `idle` seconds of no calls (gevent keeps the
    client's own background greenlets running meanwhile)."""
    gevent.sleep(idle)
    try:
        return psutil.Process(pid).memory_info().rss / MiB
    except psutil.NoSuchProcess:
        raise BenchError('the instance (pid %d) exited' % pid) from None
