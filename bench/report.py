"""What the benches print their figures with: number formats, the PASS/MISS mark, the
background-CPU note, JSON on stdout, and a Console for the table."""
from __future__ import annotations

import json
import os
import platform
import sys
from typing import Any, Iterable, Sequence

from rich.console import Console

NOISY = 0.25  # background CPU (cores) above which the report warns


def commas(rate: float) -> str:
    """A rate as a whole number with thousands separators: 12,345."""
    return format(round(rate), ',')


def verdict(ok: bool) -> str:
    return '[bold green]PASS[/]' if ok else '[bold red]MISS[/]'


def spread(ratios: Sequence[float]) -> str:
    """The lowest and highest ratio over the rounds; nothing for a single round."""
    return '%.2f–%.2f' % (min(ratios), max(ratios)) if len(ratios) > 1 else ''


def round_ratios(rates: Iterable[Any], base: Iterable[Any]) -> list[float]:
    """Each round's rate over the same round's `base` rate (both with .per_second)."""
    return [round(r.per_second / b.per_second, 3) for r, b in zip(rates, base)]


def mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def median(xs: Iterable[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def machine(**versions: Any) -> dict[str, Any]:
    """The machine for the JSON and the caption; `versions` go between Python and the platform."""
    return {'cpus': os.cpu_count(), 'python': platform.python_version(), **versions,
            'platform': platform.platform()}


def note_noisy(err: Console, cpu: float, what: str, used: str = 'used %.2f CPU during the run') -> None:
    """Warn when other processes were busy: `what` ('the ratios are') is noisier than usual."""
    if cpu > NOISY:
        err.print('[yellow]note:[/] other processes %s; %s noisier than usual' % (used % cpu, what),
                  highlight=False, soft_wrap=True)


def print_json(data: dict[str, Any]) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write('\n')


def table_console(width: int) -> Console:
    out = Console()
    if not out.is_terminal:  # piped: no terminal width to fit, so do not wrap at 80
        out = Console(width=width)
    return out
