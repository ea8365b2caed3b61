"""`fannode top`: the Textual app. It only draws and asks; everything that talks to the
cluster happens in the source (fannode.tui.source), which sends back snapshots, action
outcomes, log records and traces as messages. The views are in fannode.tui.screens."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from fannode.tui.rows import LogBatch, Snapshot, Status
from fannode.tui.screens.help import HelpScreen
from fannode.tui.screens.logs import LogScreen
from fannode.tui.screens.top import TOP_TCSS, TopScreen
from fannode.tui.screens.trace import TraceScreen
from fannode.tui.source import Source


class TopApp(App[None]):
    # Absolute, so subclasses elsewhere find them too; the main view's own, since Textual
    # loads the CSS_PATH of pushed screens only and the main view is the default screen.
    CSS_PATH = [Path(__file__).with_name('app.tcss'), TOP_TCSS]
    TITLE = 'fannode top'
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding('question_mark', 'help', 'help', key_display='?'),
        Binding('q', 'quit', 'quit'),
    ]

    class Update(Message):
        """Something the source delivered (from its thread)."""

        def __init__(self, kind: str, payload: Any):
            super().__init__()
            self.kind = kind
            self.payload = payload

    def __init__(self, source: Source, clock: Callable[[], float] = time.time):
        super().__init__()
        self.source = source
        self.main = TopScreen(source, self.deliver, clock)

    def get_default_screen(self) -> Screen:
        return self.main

    def on_unmount(self) -> None:
        self.source.stop()

    def deliver(self, kind: str, payload: Any) -> None:
        """The source's way in: any thread, never blocks."""
        self.post_message(self.Update(kind, payload))

    def on_top_app_update(self, message: Update) -> None:
        payload = message.payload
        if isinstance(payload, Snapshot):
            self.main.show(payload)
        elif isinstance(payload, Status):
            self.main.set_status(payload.text, payload.ok)
            if self.screen is not self.main:
                self.notify(payload.text, severity='information' if payload.ok else 'error')
        else:
            kind = LogScreen if isinstance(payload, LogBatch) else TraceScreen
            for screen in self.screen_stack:
                if isinstance(screen, kind):
                    screen.take(payload)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
