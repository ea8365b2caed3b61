"""The rows every case returns, and what the runner does with them: one rich table,
a JSON file per run, and the comparison of two such files."""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

import psutil
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.procs import ROOT

NOISY = 0.25  # background CPU (cores) above which the report warns
RATES = ('calls/s', 'events/s', 'req/s')


def commas(rate: float) -> str:
    """A rate as a whole number with thousands separators: 12,345."""
    return format(round(rate), ',')


def mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def median(xs: Iterable[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


@dataclass
class Stat:
    """One figure over the repetitions: the median, and min–max for the spread."""
    samples: list[float]

    @property
    def median(self) -> float:
        return median(self.samples)

    def json(self) -> dict[str, Any]:
        return {'median': round(self.median, 4), 'min': round(min(self.samples), 4),
                'max': round(max(self.samples), 4), 'samples': [round(x, 4) for x in self.samples]}


@dataclass(frozen=True)
class Target:
    """`fannode ÷ anchor` (on='ratio') or fannode's own figure (on='value') against a limit."""
    op: str            # '≥' or '≤'
    limit: float
    on: str = 'ratio'
    label: str = ''    # instead of the generated text, when the limit needs explaining

    def met(self, value: float) -> bool:
        return value >= self.limit if self.op == '≥' else value <= self.limit

    def text(self, unit: str) -> str:
        if self.label:
            return self.label
        return '%s %g%s' % (self.op, self.limit, '×' if self.on == 'ratio' else ' ' + unit)


def at_least(limit: float) -> Target:
    return Target('≥', limit)


def at_most(limit: float, on: str = 'value') -> Target:
    return Target('≤', limit, on)


@dataclass
class Row:
    key: str                     # stable within a case, for --compare: 'sequential.raw'
    what: str                    # 'RPC sequential'
    unit: str                    # 'calls/s', 's', 'MiB', 'µs'...
    fannode: Stat | None = None
    anchor: str = ''             # what fannode is compared with
    base: Stat | None = None     # the anchor's figure
    ratio: Stat | None = None    # fannode ÷ anchor, repetition by repetition
    target: Target | None = None
    note: str = ''               # 'skipped: …', 'failed: …', or why the anchor is missing
    case: str = ''               # set by the runner

    @property
    def ok(self) -> bool | None:
        """PASS/MISS, or None: no target, or nothing to check it on."""
        if self.target is None:
            return None
        stat = self.ratio if self.target.on == 'ratio' else self.fannode
        return None if stat is None else self.target.met(stat.median)

    def json(self) -> dict[str, Any]:
        return {'case': self.case, 'key': '%s.%s' % (self.case, self.key), 'what': self.what, 'unit': self.unit,
                'fannode': self.fannode and self.fannode.json(), 'anchor': self.anchor,
                'anchor_figure': self.base and self.base.json(), 'ratio': self.ratio and self.ratio.json(),
                'target': self.target and self.target.text(self.unit), 'pass': self.ok, 'note': self.note}


def compare(key: str, what: str, unit: str, fannode: Sequence[float], anchor: str = '',
            base: Sequence[float] | None = None, target: Target | None = None, note: str = '') -> Row:
    """A row from the samples of each repetition; the ratio is taken repetition by
    repetition (they ran one after the other, under the same load)."""
    ratio = None
    ratios = [f / b for f, b in zip(fannode, base or []) if b]  # an anchor at 0 in a round: no ratio for it
    if ratios:
        ratio = Stat(ratios)
    return Row(key, what, unit, Stat(list(fannode)) if fannode else None, anchor, Stat(list(base)) if base else None,
               ratio, target, note)


def skipped(key: str, what: str, unit: str, why: str, anchor: str = '', target: Target | None = None) -> Row:
    return Row(key, what, unit, anchor=anchor, target=target, note='skipped: %s' % why)


# -- the table ------------------------------------------------------------------------------

def figure(value: float, unit: str) -> str:
    if unit in RATES:
        return commas(value)
    if unit == 's':
        return '%.2f' % value
    if unit == 'MiB' or value < 100:
        return '%.1f' % value
    return commas(value)


def cell(stat: Stat | None, unit: str) -> str:
    if stat is None:
        return ''
    text = '%s %s' % (figure(stat.median, unit), unit)
    if len(stat.samples) > 1:
        text += ' [dim](%s–%s)[/]' % (figure(min(stat.samples), unit), figure(max(stat.samples), unit))
    return text


def ratio_cell(stat: Stat | None) -> str:
    if stat is None:
        return ''
    text = '%.2f×' % stat.median
    if len(stat.samples) > 1:
        text += ' [dim](%.2f–%.2f)[/]' % (min(stat.samples), max(stat.samples))
    return text


def verdict(row: Row) -> str:
    if row.note.startswith(('skipped', 'failed')):
        colour = 'red' if row.note.startswith('failed') else 'yellow'
        return '[%s]%s[/]' % (colour, escape(row.note))
    mark = {True: '[bold green]PASS[/]', False: '[bold red]MISS[/]', None: ''}[row.ok]
    return ' '.join(filter(None, (mark, escape(row.note))))


def table(rows: list[Row], caption: str) -> Table:
    t = Table(title='fannode benchmarks beside their anchors', caption=caption, caption_justify='left')
    for name in ('case', 'fannode', 'anchor', 'anchor figure', 'fannode ÷ anchor', 'target', 'result'):
        # The figures never wrap; the labels and notes do, if they must.
        t.add_column(name, justify='right' if name in ('fannode', 'anchor figure', 'fannode ÷ anchor') else 'left',
                     no_wrap=name in ('case', 'fannode', 'anchor figure', 'fannode ÷ anchor', 'target'))
    for i, row in enumerate(rows):
        last = i + 1 == len(rows) or rows[i + 1].case != row.case
        t.add_row(escape(row.what), cell(row.fannode, row.unit), escape(row.anchor), cell(row.base, row.unit),
                  ratio_cell(row.ratio), row.target.text(row.unit) if row.target else '', verdict(row),
                  end_section=last)
    return t


def console(width: int = 200) -> Console:
    out = Console()
    if not out.is_terminal:  # piped or in a file: no terminal width to fit, so do not wrap at 80
        out = Console(width=width)
    return out


# -- the machine and the files ----------------------------------------------------------------

def _git(*args: str) -> str:
    try:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ''


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            m = re.search(r'^model name\s*:\s*(.*)$', f.read(), re.M)
            if m:
                return m.group(1).strip()
    except OSError:
        pass
    return platform.processor() or '?'


def machine() -> dict[str, Any]:
    import zmq
    rev = _git('rev-parse', '--short', 'HEAD') or '?'
    if _git('status', '--porcelain', '--untracked-files=no'):
        rev += '+changes'
    versions = {name: _version(name) for name in ('pyzmq', 'msgpack', 'gevent', 'werkzeug', 'pika', 'circus')}
    wrk = shutil.which('wrk')
    return {'cpu': cpu_model(), 'cores': os.cpu_count(), 'ram_gib': round(psutil.virtual_memory().total / 2**30, 1),
            'python': platform.python_version(), 'platform': platform.platform(), 'fannode_rev': rev,
            'libzmq': zmq.zmq_version(), **versions, 'wrk': wrk and _wrk_version(wrk)}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return '-'


def _wrk_version(path: str) -> str:
    out = subprocess.run([path, '-v'], capture_output=True, text=True).stdout
    m = re.search(r'wrk (\S+)', out)
    return m.group(1) if m else '?'


def save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + '\n')
    os.replace(tmp, path)


def comparison(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> Table:
    """Run B beside run A, row by row: B's figures as multiples of A's."""
    t = Table(title='%s → %s' % names, caption='A: %s, %s, %s; B: %s, %s, %s' % (
        a['started'], a['mode'], a['machine']['fannode_rev'], b['started'], b['mode'], b['machine']['fannode_rev']),
        caption_justify='left')
    for name in ('case', 'fannode A', 'fannode B', 'B ÷ A', 'ratio A', 'ratio B', 'B ÷ A '):
        t.add_column(name, justify='left' if name == 'case' else 'right')
    old = {r['key']: r for r in a['rows']}
    for r in b['rows']:
        o = old.get(r['key'])
        if o is None:
            continue

        def pair(key: str, unit: str) -> tuple[str, str, str]:
            x, y = o[key], r[key]
            def text(s: dict[str, Any] | None) -> str:
                if s is None:
                    return ''
                return '%.2f×' % s['median'] if unit == '×' else '%s %s' % (figure(s['median'], unit), unit)
            div = '%.2f×' % (y['median'] / x['median']) if x and y and x['median'] else ''
            return text(x), text(y), div

        t.add_row(escape('%s vs %s' % (r['what'], r['anchor']) if r['anchor'] else r['what']),
                  *pair('fannode', r['unit']), *pair('ratio', '×'))
    return t


def note_noisy(err: Console, background: dict[str, float]) -> None:
    busy = {case: cpu for case, cpu in background.items() if cpu > NOISY}
    if busy:
        err.print('[yellow]note:[/] other processes were busy during %s; those ratios are noisier than usual'
                  % ', '.join('%s (%.2f CPU)' % kv for kv in busy.items()), highlight=False, soft_wrap=True)
