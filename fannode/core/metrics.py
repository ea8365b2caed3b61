"""What `get_metrics` answers: counts and latencies per RPC method, event handler and
HTTP route, a service's own metrics, and process figures."""
from __future__ import annotations

import bisect
import collections
import gc
import os
import time
from typing import Any

import psutil

SAMPLES = 1024  # latencies kept per name: enough for a p99 of recent traffic
KINDS = ('rpc', 'event', 'http')
# Upper bounds (seconds) of the latency histogram's buckets, as Prometheus takes them
# (`le`); fixed, so histograms of every instance add up. The last bucket is +Inf.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Stats:
    """Calls, errors and recent latencies of one method, handler, route or timer."""

    __slots__ = ('calls', 'errors', 'total', 'latencies', 'expired', 'buckets')

    def __init__(self) -> None:
        self.calls = 0
        self.expired = 0  # requests refused unrun: their deadline passed while they queued
        self.errors = 0
        self.total = 0.0
        self.latencies: collections.deque[float] = collections.deque(maxlen=SAMPLES)
        self.buckets = [0] * (len(BUCKETS) + 1)  # calls per bucket, not cumulative

    def add(self, seconds: float, error: bool = False) -> None:
        self.calls += 1
        self.errors += error
        self.total += seconds
        self.latencies.append(seconds)
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1

    def snapshot(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def ms(seconds: float) -> float:
            return round(seconds * 1000, 3)

        def pct(p: float) -> float:
            return ms(ordered[min(len(ordered) - 1, int(p * len(ordered)))]) if ordered else 0.0

        return {'calls': self.calls, 'errors': self.errors, 'deadline_exceeded': self.expired,
                'mean_ms': ms(self.total / self.calls) if self.calls else 0.0,
                'p50_ms': pct(0.50), 'p90_ms': pct(0.90), 'p99_ms': pct(0.99),
                'max_ms': ms(ordered[-1]) if ordered else 0.0,
                'sum_s': self.total, 'buckets': list(self.buckets)}  # all calls, for histograms


class Counter:
    __slots__ = ('value',)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class Gauge:
    __slots__ = ('value',)

    def __init__(self) -> None:
        self.value: float = 0

    def set(self, value: float) -> None:
        self.value = value


class Timer(Stats):
    """`with self.metrics.timer('render'): ...`, or `.add(seconds)`."""

    __slots__ = ('_started',)

    def __enter__(self) -> 'Timer':
        self._started = time.monotonic()
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.add(time.monotonic() - self._started, kind is not None)


class Metrics:
    def __init__(self) -> None:
        self.stats: dict[str, dict[str, Stats]] = {kind: collections.defaultdict(Stats) for kind in KINDS}
        self.custom: dict[str, Counter | Gauge | Timer] = {}
        self.started = time.time()
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)  # the first reading only starts the clock

    @property
    def rpc(self) -> dict[str, Stats]:
        return self.stats['rpc']

    def record(self, name: str, seconds: float, error: bool, kind: str = 'rpc', expired: bool = False) -> None:
        """One request (or event) handled; with `expired`, one refused unrun because its
        deadline had passed (counted apart: it has no latency)."""
        if expired:
            self.stats[kind][name].expired += 1
        else:
            self.stats[kind][name].add(seconds, error)

    # -- a service's own metrics: self.metrics.counter('greeted').inc() ---------

    def counter(self, name: str) -> Counter:
        return self._own(name, Counter)

    def gauge(self, name: str) -> Gauge:
        return self._own(name, Gauge)

    def timer(self, name: str) -> Timer:
        return self._own(name, Timer)

    def _own(self, name: str, cls: type) -> Any:
        metric = self.custom.get(name)
        if metric is None:
            metric = self.custom[name] = cls()
        elif type(metric) is not cls:
            raise TypeError('metric %r is a %s, not a %s' % (name, type(metric).__name__.lower(),
                                                             cls.__name__.lower()))
        return metric

    def snapshot(self) -> dict[str, Any]:
        with self._process.oneshot():
            rss = self._process.memory_info().rss
            cpu = self._process.cpu_percent(None)
            threads = self._process.num_threads()
        figures: dict[str, Any] = {kind: {name: s.snapshot() for name, s in sorted(stats.items())}
                   for kind, stats in self.stats.items()}
        figures['custom'] = {name: m.snapshot() if isinstance(m, Timer) else m.value
                             for name, m in sorted(self.custom.items())}
        figures['process'] = {
            'pid': os.getpid(), 'rss': rss, 'cpu_percent': cpu, 'threads': threads,
            'greenlets': greenlets(), 'uptime': round(time.time() - self.started, 3),
            'gc': [s['collections'] for s in gc.get_stats()]}
        return figures


_counted: list[float] = [0.0, 0]  # when greenlets were last counted, and how many


def greenlets(max_age: float = 10.0) -> int:
    """Greenlets alive in this process (gevent's hub included). Counting walks every
    object (~10 ms), so a count is reused for `max_age` seconds: `top` asks every second."""
    import sys
    greenlet = sys.modules.get('greenlet')
    if greenlet is None:
        return 0
    now = time.monotonic()
    if now - _counted[0] > max_age:
        _counted[:] = now, sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and obj)
    return int(_counted[1])
