"""The dashboard's feed in the node's own process (fannode.tui.localfeed): the node's
records and timeline entries are handed over as they come (no hub, no polling), the
terminal is the dashboard's while it runs; and when `fannode up` opens the dashboard."""
from __future__ import annotations

import argparse
import io
import sys
import threading

from rich.console import Console

from conftest import wait_until
from top_helpers import fixed_snapshot

from fannode.cli.up import wants_dashboard
from fannode.node.output import Printer
from fannode.tui import localfeed
from fannode.tui.nodefeed import TimelineBatch
from fannode.tui.rows import LogBatch


def record(service: str, level: str, msg: str, trace: str = '') -> dict:
    return {'kind': 'log', 'service': service, 'instance': service.lower() + '.1', 'pid': 1, 'host': 'vm',
            'ts': 0.0, 'level': level, 'logger': 'print', 'msg': msg, 'trace': trace, 'span': ''}


class Got:
    """The app: what it was handed; each log batch taken at once, as the app does."""

    def __init__(self, feed=None):
        self.items: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self.feed = feed

    def __call__(self, kind, payload):
        with self.lock:
            self.items.append((kind, payload))
        if kind == 'logs' and self.feed is not None:
            self.feed.logs_taken()

    def of(self, kind):
        with self.lock:
            return [p for k, p in self.items if k == kind]


def test_records_and_timeline_entries_go_to_the_app_and_nothing_to_the_terminal(monkeypatch):
    monkeypatch.setattr(localfeed.LocalFeed, '_connect', lambda self: None)  # no cluster here
    out = io.StringIO()
    printer = Printer(console=Console(file=out, width=200))
    feed = localfeed.LocalFeed(printer, 'hub://127.0.0.1:1', 'node.yml', lambda: None)
    got = Got(feed)
    try:
        printer.event('greeting.1 started (pid 11)', 'dim')
        feed.attach(got)
        assert [e['text'] for batch in got.of('timeline') for e in batch.entries] == ['greeting.1 started (pid 11)']
        printer.event('greeting: 1 → 2 processes (fannode scale)', 'cyan')
        assert got.of('timeline')[-1] == TimelineBatch((dict(printer.timeline.entries[-1]),))

        printer.record(record('Greeting', 'INFO', 'Saying hi to Joe', 'a1' * 16))
        printer.record(record('Greeting', 'DEBUG', 'connecting'))
        printer.record(record('Listen', 'ERROR', 'no store'))
        printer.line('greeting', 1, 'Saying hi to Joe')
        number = feed.follow_logs(None, 'INFO')  # every service, INFO and above: the kept ones first
        wait_until(lambda: [b for b in got.of('logs') if b.follow == number], message='the history')
        first = [b for b in got.of('logs') if b.follow == number][0]
        assert [r['msg'] for r in first.records] == ['Saying hi to Joe', 'no store']

        greeting = next(r for r in fixed_snapshot().rows if r.kind == 'service' and r.service == 'Greeting')
        number = feed.follow_logs(greeting, 'DEBUG')
        printer.record(record('Greeting', 'WARNING', 'slow'))
        printer.record(record('Listen', 'WARNING', 'slow too'))

        def greeting_lines():
            return [r['msg'] for b in got.of('logs') if b.follow == number for r in b.records]
        wait_until(lambda: 'slow' in greeting_lines(), message="Greeting's new line")
        assert greeting_lines() == ['Saying hi to Joe', 'connecting', 'slow']
        assert out.getvalue() == ''  # the dashboard owns the terminal: no line, no event written
    finally:
        feed.stop()
    printer.line('greeting', 1, 'after')  # the dashboard gone, lines are printed again
    assert out.getvalue().endswith('after\n')
    assert all(isinstance(b, LogBatch) for b in got.of('logs'))


def test_actions_before_the_registry_answers_say_so(monkeypatch):
    monkeypatch.setattr(localfeed.LocalFeed, '_connect', lambda self: None)
    feed = localfeed.LocalFeed(Printer(console=Console(file=io.StringIO())), 'hub://127.0.0.1:1', 'node.yml',
                               lambda: None)
    got = Got()
    feed.attach(got)
    try:
        feed.scale(fixed_snapshot().rows[0], 1)
        assert got.of('status')[0].text == 'the cluster is starting: its registry does not answer yet'
    finally:
        feed.stop()


def test_the_dashboard_only_in_a_terminal_without_ci_or_no_tui(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True
    for name in ('stdin', 'stdout', 'stderr'):
        monkeypatch.setattr(sys, name, Tty())
    monkeypatch.setenv('TERM', 'xterm-256color')
    monkeypatch.delenv('CI', raising=False)
    assert wants_dashboard(argparse.Namespace(no_tui=False))
    assert not wants_dashboard(argparse.Namespace(no_tui=True))
    monkeypatch.setenv('CI', 'true')
    assert not wants_dashboard(argparse.Namespace(no_tui=False))
    monkeypatch.delenv('CI')
    monkeypatch.setattr(sys, 'stdout', io.StringIO())  # piped
    assert not wants_dashboard(argparse.Namespace(no_tui=False))
