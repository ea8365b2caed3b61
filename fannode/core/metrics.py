"""Per-method call counts and latencies, and process figures, for `get_metrics`."""
from __future__ import annotations

import collections
import gc
import os
import time
from typing import Any

import psutil

SAMPLES = 1024  # latencies kept per method: enough for a p99 of recent traffic


class MethodStats:
    __slots__ = ('calls', 'errors', 'total', 'latencies')

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.total = 0.0
        self.latencies: collections.deque[float] = collections.deque(maxlen=SAMPLES)

    def snapshot(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 3) if ordered else 0.0

        return {'calls': self.calls, 'errors': self.errors,
                'mean_ms': round(self.total / self.calls * 1000, 3) if self.calls else 0.0,
                'p50_ms': pct(0.50), 'p90_ms': pct(0.90), 'p99_ms': pct(0.99),
                'max_ms': round(ordered[-1] * 1000, 3) if ordered else 0.0}


class Metrics:
    def __init__(self) -> None:
        self.rpc: dict[str, MethodStats] = collections.defaultdict(MethodStats)
        self.started = time.time()
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)  # the first reading only starts the clock

    def record(self, subject: str, seconds: float, error: bool) -> None:
        stats = self.rpc[subject]
        stats.calls += 1
        stats.errors += error
        stats.total += seconds
        stats.latencies.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        with self._process.oneshot():
            rss = self._process.memory_info().rss
            cpu = self._process.cpu_percent(None)
            threads = self._process.num_threads()
        return {
            'rpc': {subject: stats.snapshot() for subject, stats in sorted(self.rpc.items())},
            'process': {'pid': os.getpid(), 'rss': rss, 'cpu_percent': cpu, 'threads': threads,
                        'uptime': round(time.time() - self.started, 3),
                        'gc': [s['collections'] for s in gc.get_stats()]},
        }
