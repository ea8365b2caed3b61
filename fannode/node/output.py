"""What `fannode up` prints: its own events, and its children's output line by line,
each line prefixed with the block name and worker index."""
from __future__ import annotations

import sys
import time
from collections import deque
from typing import Callable

from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.text import Text

from fannode.core.text import visible
from fannode.logs.render import painter
from fannode.node.timeline import Timeline

COLORS = ('cyan', 'green', 'magenta', 'yellow', 'blue', 'bright_cyan', 'bright_green', 'bright_magenta')
TAIL = 20          # last lines kept per block, shown when it fails
LONGEST = 64 * 1024  # a "line" longer than this is cut, so a child without newlines cannot grow us


class LineSink:
    """A circus output stream: raw chunks per pid in, whole lines out."""

    def __init__(self, on_line: Callable[[int, str], None]):
        self.on_line = on_line
        self.partial: dict[int, bytes] = {}

    def __call__(self, data: dict) -> None:
        pid, chunk = data['pid'], data['data']
        buf = self.partial.pop(pid, b'') + chunk
        *lines, rest = buf.split(b'\n')
        for line in lines:
            self.on_line(pid, line.decode('utf-8', 'replace').rstrip('\r'))
        if len(rest) > LONGEST:
            self.on_line(pid, rest.decode('utf-8', 'replace'))
            rest = b''
        if rest:
            self.partial[pid] = rest

    def flush(self, pid: int) -> None:
        rest = self.partial.pop(pid, b'')
        if rest:
            self.on_line(pid, rest.decode('utf-8', 'replace'))

    def close(self) -> None:
        for pid in list(self.partial):
            self.flush(pid)


class Printer:
    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.console = console or Console(file=sys.stdout, highlight=False)
        self.quiet = quiet
        self.colors: dict[str, str] = {}
        self.tails: dict[str, deque[str]] = {}
        self.width = 8
        self.closed = False
        self.paint = painter(self.console)
        self.prefixes: dict[tuple[str, int], str] = {}
        self.timeline = Timeline()  # every event, structured (fannode.node.timeline)
        # The dashboard's (fannode.tui.nodefeed): when set, children's records go to it and
        # nothing is written to the terminal, which the dashboard owns.
        self.records: Callable[[dict], None] | None = None

    def _print(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.console.print(text, soft_wrap=True)
        except OSError:  # the terminal went away (tmux pane killed): go on without output
            self.closed = True

    def color(self, block: str) -> str:
        if block not in self.colors:
            self.colors[block] = COLORS[len(self.colors) % len(COLORS)]
        return self.colors[block]

    def line(self, block: str, index: int, text: str) -> None:
        """A child's line, written straight to the file: a busy child writes thousands a
        second, and rich's Console.print would cost the node ~180 µs each."""
        text = visible(text)
        self.tails.setdefault(block, deque(maxlen=TAIL)).append(text)
        if self.quiet or self.closed or self.records is not None:
            return
        who = '%s.%d' % (block, index)
        self.width = max(self.width, len(who))
        prefix = self.prefixes.get((who, self.width))
        if prefix is None:
            prefix = self.prefixes[who, self.width] = self.paint(self.color(block), who.ljust(self.width)) + ' │ '
        try:
            self.console.file.write(prefix + text + '\n')
            self.console.file.flush()
        except OSError:  # the terminal went away (tmux pane killed): go on without output
            self.closed = True

    def record(self, record: dict) -> None:
        """A child's record (a line, parsed or wrapped; fannode.node.childlogs), for the dashboard."""
        if self.records is not None:
            self.records(record)

    def event(self, text: str, style: str = 'bold') -> None:
        try:
            plain = Text.from_markup(visible(text)).plain
        except MarkupError:
            plain = visible(text)
        self.timeline.record(plain)
        if self.records is not None:
            return
        self._print('[dim]%s[/] [%s]node[/] %s' % (time.strftime('%H:%M:%S'), style, visible(text)))

    def replay(self, entry: dict) -> None:
        """A timeline entry printed after the fact, as `event` printed it then (the
        dashboard's closing lines); nothing if the terminal has gone."""
        stamp = time.strftime('%H:%M:%S', time.localtime(entry['time']))
        self._print('[dim]%s[/] [bold]node[/] %s' % (stamp, escape(visible(entry['text']))))

    def error(self, text: str) -> None:
        self.event('[red]%s[/]' % escape(text), 'bold red')

    def tail(self, block: str) -> list[str]:
        return list(self.tails.get(block, ()))
