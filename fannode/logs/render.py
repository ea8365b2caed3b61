"""Records as people read them: `tail` lines and `trace` trees."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from rich.console import Console
from rich.style import Style
from rich.text import Text
from rich.tree import Tree

from fannode.core.text import visible
from fannode.logs.records import Record
from fannode.logs.spans import span_tree

COLORS = ('cyan', 'green', 'magenta', 'yellow', 'blue', 'bright_cyan', 'bright_green', 'bright_magenta')
# Guides of a deeper tree would fill the line and rich would show nothing of the spans
# (and take time the square of the depth): deeper records line up here, with their depth.
DEEPEST = 12
LEVEL_STYLES = {'DEBUG': 'dim', 'INFO': '', 'WARNING': 'yellow', 'ERROR': 'bold red', 'CRITICAL': 'bold red'}


def clock(ts: Any) -> str:
    try:
        return '%s.%03d' % (time.strftime('%H:%M:%S', time.localtime(ts)), int(ts % 1 * 1000))
    except (TypeError, ValueError, OverflowError, OSError):  # 0, missing, or not a time at all
        return '--:--:--.---'


def painter(console: Console) -> Callable[[str, str], str]:
    """paint(style, text): `text` in ANSI codes for `style` when `console` is a color
    terminal, else as is. Styles are rendered by rich once each, and lines are then
    written directly: Console.print costs ~180 µs a line, too much for thousands a second."""
    from rich.color import ColorSystem
    system = {'standard': ColorSystem.STANDARD, '256': ColorSystem.EIGHT_BIT, 'truecolor': ColorSystem.TRUECOLOR,
              'windows': ColorSystem.WINDOWS}.get(console.color_system or '') if console.is_terminal else None
    codes: dict[str, tuple[str, str]] = {}

    def paint(style: str, text: str) -> str:
        if system is None or not style:
            return text
        if style not in codes:
            start, _, end = Style.parse(style).render('\0', color_system=system).partition('\0')
            codes[style] = (start, end)
        start, end = codes[style]
        return start + text + end
    return paint


class LineFormat:
    """One line per record, colored by service."""

    def __init__(self, console: Console):
        self.paint = painter(console)
        self.colors: dict[str, str] = {}

    def _service(self, name: str) -> str:
        if name not in self.colors:
            self.colors[name] = COLORS[len(self.colors) % len(COLORS)]
        return self.paint(self.colors[name], name)

    def line(self, record: Record) -> str:
        """Every field as text with its control characters visible: records come from
        the network, and what a client sent (a request path) ends up in them."""
        level = shown(record.get('level', 'INFO'))
        who = '%s %s' % (self._service(shown(record.get('service', '?'))),
                         shown(record.get('instance') or record.get('pid', '')))
        logger = shown(record.get('logger', ''))
        trace = shown(record.get('trace') or '-')
        message = shown(record.get('msg', ''))
        if record.get('kind') == 'span':
            message = shown('%s %s %s %sms' % (record.get('type'), record.get('name'), record.get('status'),
                                               number(record.get('duration_ms'))))
            level, logger = 'SPAN', ''
        return '%s %s %s %s[%s] %s' % (
            clock(record.get('ts', 0)), who, self.paint(LEVEL_STYLES.get(level, ''), '%-7s' % level),
            '' if logger in ('print', '') else logger + ' ', trace[:8], message)


def shown(value: Any) -> str:
    return visible(str(value))


def number(value: Any) -> str:
    """A duration as '%.1f', or '?' when a record carries something else."""
    return '%.1f' % value if isinstance(value, (int, float)) else '?'


def trace_tree(trace_id: str, records: Iterable[Record]) -> Tree:
    """The spans of one trace as a tree (parents before children, each in time order),
    each with its log lines."""
    records = list(records)
    shown_tree = span_tree(records, logs=True)
    spans = [r for _, r in shown_tree if r.get('kind') == 'span']
    services = {str(r.get('service')) for r in records}
    total = max((d for depth, r in shown_tree if depth == 0 and r.get('kind') == 'span'
                 and isinstance(d := r.get('duration_ms', 0), (int, float))), default=0)
    tree = Tree(Text.assemble(('trace ', 'bold'), shown(trace_id), ' — %d span(s), %d service(s), %.1f ms'
                              % (len(spans), len(services), total)))
    parents = [tree]  # parents[d]: the node a record at depth d goes under
    for depth, r in shown_tree:
        nested = min(depth, DEEPEST)
        del parents[nested + 1:]
        if r.get('kind') == 'log':
            level = shown(r.get('level', 'INFO'))
            label = Text.assemble((clock(r.get('ts', 0)) + ' ', 'dim'), ('%-7s ' % level, LEVEL_STYLES.get(level, '')),
                                  shown(r.get('msg', '')))
        else:
            style = 'green' if r.get('status') == 'ok' else 'red'
            label = Text.assemble(
                ('%-5s ' % shown(r.get('type', '')), 'bold'), (shown(r.get('name', '')), 'bold'),
                '  %s %s  ' % (shown(r.get('service', '')), shown(r.get('instance', ''))),
                ('%s ms' % number(r.get('duration_ms', 0)), 'cyan'), '  ', (shown(r.get('status', '')), style),
                '  ', (clock(r.get('ts', 0)), 'dim'))
        if depth > nested:
            label = Text.assemble(('depth %d  ' % depth, 'dim'), label)
        node = parents[nested].add(label)
        if r.get('kind') == 'span':
            parents.append(node)
    return tree
