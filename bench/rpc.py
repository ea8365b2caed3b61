"""The measurements: round trips counted over a fixed time, and an idle RSS.

The raw anchor uses plain blocking pyzmq; the fannode ones use the real client
(under gevent) exactly as service code calls another service:
`proxy.greet(name='Joe')`.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import gevent
import msgpack
import psutil
import zmq

from bench import loops
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


class RawClient:
    """A REQ socket to the raw REP server; msgpack on both sides, like fannode."""

    def __init__(self, endpoint: str):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, 5000)
        self.socket.connect(endpoint)

    def call(self) -> Any:
        try:
            self.socket.send(msgpack.packb(REQUEST))
            return msgpack.unpackb(self.socket.recv())
        except zmq.Again:
            raise BenchError('the raw REP server did not answer within 5s') from None

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


def fannode_call(proxy: Any) -> Callable[[], Any]:
    return lambda: proxy.greet(**REQUEST)


def check(call: Callable[[], Any]) -> None:
    reply = call()
    if reply != REPLY:
        raise BenchError('unexpected reply %r (expected %r)' % (reply, REPLY))


def sequential(call: Callable[[], Any], duration: float) -> Rate:
    """`call` back to back for `duration` seconds."""
    return Rate(*loops.sequential(call, duration))


def in_flight(call: Callable[[], Any], concurrency: int, duration: float, ramp: float) -> Rate:
    """`concurrency` greenlets each looping the blocking `call`, so that many calls are
    always outstanding; counted for `duration` once `ramp` seconds have passed."""
    try:
        return Rate(*loops.in_flight(call, concurrency, duration, ramp))
    except Exception as e:  # a call failed in one of the greenlets
        raise BenchError('a call failed: %s: %s' % (type(e).__name__, e)) from None


def quiet_interrupts() -> None:
    """Ctrl-C (or SIGTERM) caught in a greenlet still reaches the main one, which cleans
    up; it just need not print a traceback on the way."""
    hub = gevent.get_hub()
    hub.NOT_ERROR = tuple(hub.NOT_ERROR) + (KeyboardInterrupt,)


def idle_rss(pid: int, idle: float) -> float:
    """RSS in MiB of process `pid` after `idle` seconds without calls (gevent.sleep, so
    the client's own background greenlets keep running meanwhile)."""
    gevent.sleep(idle)
    try:
        return psutil.Process(pid).memory_info().rss / MiB
    except psutil.NoSuchProcess:
        raise BenchError('the instance (pid %d) exited' % pid) from None


class CpuWatch:
    """CPU used on the machine by processes other than ours during a window, in cores:
    a busy neighbour skews the ratios, so the report shows it."""

    def __init__(self, pids: list[int]):
        self.procs = [psutil.Process(pid) for pid in pids]
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, 'irq', 0.0) + getattr(t, 'softirq', 0.0)
        ours = 0.0
        for p in self.procs:
            try:
                c = p.cpu_times()
                ours += c.user + c.system
            except psutil.NoSuchProcess:
                pass
        return time.monotonic(), busy, ours

    def background(self) -> float:
        end = self._sample()
        wall = end[0] - self.start[0]
        other = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return max(0.0, other / wall) if wall > 0 else 0.0
