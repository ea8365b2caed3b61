"""The NodeFeed (fannode.tui.nodefeed) of the node's own process: `fannode up` in a
terminal runs the node in a thread and the dashboard in the main thread.

- The log pane is fed by the node's output capture, not by polling a hub: the Printer
  hands each child record to `take_record` (the node's thread: an append under a lock,
  nothing more), and a pump thread, woken when there are records and someone follows,
  hands them to the app in batches (at most ten a second: a chatty service must not
  flood the app, and the node never waits for the screen). One batch at a time: the next
  goes once the app has taken the last (`logs_taken`), so a slow screen costs no memory.
- Timeline entries go to the app as the node records them.
- The table, scale/restart/route and traces are `fannode top`'s (fannode.tui.source.TopSource,
  on the cluster's registry and this node's control socket), started once the cluster's
  registry answers (the hub starts with the node)."""
from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable

from fannode.node.output import Printer
from fannode.tui.logfeed import record_filter
from fannode.tui.nodefeed import TimelineBatch
from fannode.tui.rows import LEVELS, LogBatch, Row, Status
from fannode.tui.source import Deliver, TopSource

KEPT = 2000          # the newest records, handed over in batches
HISTORY = 200        # per service (or block): what a log pane that opens shows first
BATCH = 0.1          # records gathered this long before they go to the app
CONNECT_EVERY = 0.5  # while the registry does not answer yet


def _level(record: dict[str, Any]) -> int:
    try:
        return LEVELS.index(str(record.get('level', 'INFO')))
    except ValueError:
        return 1


class LocalFeed:
    def __init__(self, printer: Printer, registry_url: str, node_file: str, stop_node: Callable[[], None],
                 interval: float = 1.0):
        self.printer = printer
        self.registry_url = registry_url
        self.node_file = node_file
        self._stop_node = stop_node
        self.interval = interval
        self.deliver: Deliver = lambda kind, payload: None
        self.top: TopSource | None = None
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._records: collections.deque[tuple[int, dict]] = collections.deque(maxlen=KEPT)
        # a chatty service must not push a quiet one's lines out of a pane that opens
        self._history: dict[str, collections.deque[tuple[int, dict]]] = {}
        self._seq = 0
        self._sent = 0     # the last record handed to the app
        self._follows = 0  # follow_logs() calls: each batch says which it answers
        self._wake = threading.Event()
        self._in_flight = threading.Event()  # a batch posted, not yet taken: one at a time
        self._follow: tuple[int, Callable[[dict], bool], int] = (0, lambda r: False, 0)
        self._threads: list[threading.Thread] = []
        printer.records = self.take_record
        printer.timeline.listeners.append(self._entry)

    # -- the node's thread ----------------------------------------------------------

    def take_record(self, record: dict) -> None:
        with self._lock:
            self._seq += 1
            self._records.append((self._seq, record))
            kept = self._history.get(record.get('service', ''))
            if kept is None:
                kept = self._history[record.get('service', '')] = collections.deque(maxlen=HISTORY)
            kept.append((self._seq, record))
            following = self._follow[0]
        if following and not self._wake.is_set():
            self._wake.set()

    def _entry(self, entry: dict[str, Any]) -> None:
        self.deliver('timeline', TimelineBatch((entry,)))

    # -- the app's thread -------------------------------------------------------------

    def attach(self, deliver: Deliver) -> None:
        timeline = self.printer.timeline
        with timeline.lock:  # no entry between the backlog and the first one delivered
            self.deliver = deliver
            deliver('timeline', TimelineBatch(tuple(timeline.entries)))
        if self.top is not None:
            self.top.attach(deliver)
        if not self._threads:
            for target, name in ((self._connect, 'fannode-dashboard-top'), (self._pump, 'fannode-dashboard-logs')):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self.stopped.set()
        self._wake.set()
        self.printer.records = None
        if self.top is not None:
            self.top.stop()

    def stop_node(self) -> None:
        self._stop_node()

    def scale(self, row: Row, delta: int) -> None:
        self._top('scale', row, delta)

    def restart(self, row: Row) -> None:
        self._top('restart', row)

    def route(self, row: Row) -> None:
        self._top('route', row)

    def trace(self, trace_id: str) -> None:
        self._top('trace', trace_id)

    def _top(self, name: str, *args: Any) -> None:
        if self.top is None:
            self.deliver('status', Status('the cluster is starting: its registry does not answer yet', ok=False))
        else:
            getattr(self.top, name)(*args)

    def follow_logs(self, row: Row | None, level: str | None = None) -> int:
        keep = record_filter(row)
        service = row.service if row is not None and row.is_group and row.service else ''
        wanted = (lambda r: keep(r) and r.get('service') == service) if service else keep
        with self._lock:
            self._follows += 1
            number = self._follows
            self._follow = (number, wanted, LEVELS.index(level) if level in LEVELS else 0)
            self._sent = 0  # the pump hands over what is kept first: the pane's history
        self._wake.set()
        return number

    def stop_logs(self) -> None:
        with self._lock:
            self._follow = (0, lambda r: False, 0)

    # -- threads of its own ---------------------------------------------------------------

    def logs_taken(self) -> None:
        """The app took the batch in flight (the app's thread): the pump may hand the next."""
        self._in_flight.clear()
        self._wake.set()

    def _pump(self) -> None:
        while not self.stopped.is_set():
            self._wake.wait()
            self._wake.clear()
            if self.stopped.is_set():
                return
            time.sleep(BATCH)
            if self._in_flight.is_set():  # the app has not taken the last batch: keep it waiting for one
                continue                  # (the deque bounds what is kept; logs_taken wakes the pump)
            with self._lock:
                number, wanted, level = self._follow
                fresh = self._seq - self._sent
                opening = not self._sent
                if opening:  # a pane that opens: each service's newest
                    items = sorted((x for kept in self._history.values() for x in kept), key=lambda x: x[0])
                elif fresh <= 0:  # the record that woke us went out with the last batch
                    continue
                elif fresh < len(self._records):
                    items = list(self._records)[-fresh:]
                else:  # more came than are kept: everything kept
                    items = list(self._records)
                self._sent = self._seq
            if not number:
                continue
            batch = tuple(r for _, r in items if _level(r) >= level and wanted(r))
            if not batch and not opening:
                continue
            self._in_flight.set()
            self.deliver('logs', LogBatch(number, batch))

    def _connect(self) -> None:
        """TopSource once the registry answers: the node starts the hub with its first wave."""
        while not self.stopped.is_set():
            top = TopSource(self.registry_url, self.node_file, self.interval)
            try:
                top.start(wait=5.0)
            except Exception:  # noqa: BLE001 - not up yet; the timeline says what the node does
                self.stopped.wait(CONNECT_EVERY)
                continue
            self.top = top
            top.attach(self.deliver)
            if self.stopped.is_set():
                top.stop()
            return
