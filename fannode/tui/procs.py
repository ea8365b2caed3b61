"""cpu % and rss of the node's local processes that are no instance (the hub, redis):
they answer no get_metrics, so top reads them with psutil (in the source's thread)."""
from __future__ import annotations

from typing import Any


class LocalFigures:
    """`figures(pid)` → (cpu %, rss); the psutil.Process kept between polls, since
    cpu_percent measures from one call to the next."""

    def __init__(self) -> None:
        self.procs: dict[int, Any] = {}

    def __call__(self, pid: int) -> tuple[float | None, int | None]:
        import psutil
        proc = self.procs.get(pid)
        try:
            if proc is None:
                proc = self.procs[pid] = psutil.Process(pid)
                proc.cpu_percent(None)
                return None, proc.memory_info().rss
            with proc.oneshot():
                return proc.cpu_percent(None), proc.memory_info().rss
        except psutil.Error:
            self.procs.pop(pid, None)
            return None, None
