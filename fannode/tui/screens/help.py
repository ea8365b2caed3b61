"""`?`: the keys of every view, over the current one."""
from __future__ import annotations

from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]fannode top[/b]: every service and instance, refreshed every second

[b]Main view[/b]
  ↑ ↓ PgUp PgDn   select a row
  + (or =) / -    one process more / fewer in the selected row's node block
  r               restart the selected instance (the node starts a new one)
  R               restart every process of the selected service or block
  l               logs of the selected row (service, block or instance)
  v               switch the selected service's version: unpinned calls go to
                  the next older live version; after the oldest, the newest
  t               trace view: type a trace id
  ?               this help          q   quit

[b]Log pane[/b]
  1 2 3 4 5       level: DEBUG INFO WARNING ERROR CRITICAL and above
  /               search (Enter applies, empty clears)
  Enter or click  the selected line's trace
  Esc             back

[b]Trace view[/b]
  Enter           look up the trace id typed
  Enter on a span only that span's logs (again: all)
  Esc             back

Scaling and restarting need a node (`fannode up`) running the node.yml
top was started for (--file); without one the rows come from discovery.

Press any key to close."""


class HelpScreen(ModalScreen[None]):
    CSS_PATH = Path(__file__).with_name('help.tcss')  # absolute: found from subclasses elsewhere too

    def __init__(self, text: str = HELP):
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(self.text, id='help')

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.dismiss()
