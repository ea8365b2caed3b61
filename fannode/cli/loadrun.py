"""`fannode request -N COUNT -C CONCURRENCY`: the same call made COUNT times by
CONCURRENCY greenlets over one client, then a latency summary."""
from __future__ import annotations

import collections
import contextvars
import math
import time
from typing import Any, Callable

import gevent

from fannode.core import trace

PERCENTILES = (('p50', 0.50), ('p90', 0.90), ('p99', 0.99))


class Summary:
    def __init__(self, count: int, concurrency: int):
        self.count = count
        self.concurrency = concurrency
        self.latencies: list[float] = []  # seconds, of every call: replies and errors alike
        self.errors: collections.Counter[str] = collections.Counter()
        self.first_errors: dict[str, BaseException] = {}
        self.seconds = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return self.done - sum(self.errors.values())

    def percentile(self, p: float) -> float:
        """Nearest rank, in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000

    def most_common_error(self) -> BaseException | None:
        if not self.errors:
            return None
        return self.first_errors[self.errors.most_common(1)[0][0]]

    def to_dict(self) -> dict[str, Any]:
        latency = {name: round(self.percentile(p), 3) for name, p in PERCENTILES}
        latency['max'] = round(max(self.latencies, default=0.0) * 1000, 3)
        return {'count': self.done, 'concurrency': self.concurrency, 'ok': self.ok,
                'errors': dict(self.errors.most_common()), 'seconds': round(self.seconds, 3),
                'rps': round(self.done / self.seconds, 1) if self.seconds else 0.0,
                'latency_ms': latency}


def run(call: Callable[[], Any], count: int, concurrency: int, trace_id: str = '',
        progress: bool = False) -> Summary:
    """Make `call()` `count` times, at most `concurrency` at once; each call a trace of its
    own (or all in `trace_id`). Errors are counted by type, never raised."""
    summary = Summary(count, concurrency)
    remaining = iter(range(count))

    def worker() -> None:
        for _ in remaining:  # shared: each index is taken by one worker
            trace.set_id(trace_id or trace.new_id())
            started = time.perf_counter()
            try:
                call()
            except Exception as e:  # counted: one failing call must not end the run
                name = type(e).__name__
                summary.errors[name] += 1
                summary.first_errors.setdefault(name, e)
            summary.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    # A copy of the caller's context each: the user headers set around the run travel,
    # and one context cannot be entered by two greenlets at once.
    workers = [gevent.spawn(contextvars.copy_context().run, worker) for _ in range(min(count, concurrency))]
    ticker = gevent.spawn(_show_progress, summary) if progress else None
    try:
        gevent.joinall(workers, raise_error=True)
    finally:
        gevent.killall(workers)
        if ticker is not None:
            ticker.kill()
    summary.seconds = time.perf_counter() - started
    return summary


def _show_progress(summary: Summary) -> None:
    """A progress bar on stderr, for runs that last more than a second."""
    gevent.sleep(1.0)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fannode.cli import output
    # Refreshed from this greenlet: rich's own refresh thread would not run between switches.
    with Progress(TextColumn('requests'), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=output.err, auto_refresh=False, transient=True) as bar:
        task = bar.add_task('requests', total=summary.count)
        while True:
            bar.update(task, completed=summary.done)
            bar.refresh()
            gevent.sleep(0.1)


def print_summary(summary: Summary) -> None:
    from rich.table import Table

    from fannode.cli import output
    data = summary.to_dict()
    table = Table(box=None, pad_edge=False)
    for column in ('requests', 'ok', 'errors', 'req/s', 'p50', 'p90', 'p99', 'max'):
        table.add_column(column, justify='right')
    latency = data['latency_ms']
    table.add_row(str(data['count']), str(data['ok']), str(sum(data['errors'].values())),
                  '%.1f' % data['rps'], *('%.2f ms' % latency[k] for k in ('p50', 'p90', 'p99', 'max')))
    output.out.print(table)
    output.out.print('%d calls at concurrency %d in %.2fs' % (data['count'], summary.concurrency, data['seconds']))
    for name, n in data['errors'].items():
        output.out.print('  %d x %s: %s' % (n, name, summary.first_errors[name]), markup=False)
