"""What a review of the dashboard found, kept fixed: the log pump hands each record once and
one batch at a time; warnings logged while the dashboard runs go to the timeline, not over
the screen; the closing lines survive a terminal that has gone; the editor's Ctrl-C and
Ctrl-\\ do not reach the node."""
from __future__ import annotations

import errno
import io
import logging
import os
import signal
import sys
import threading
import time
import warnings

from rich.console import Console

from conftest import wait_until

from fannode.node.output import Printer
from fannode.tui import localfeed, nodeapp
from fannode.tui.screens.node import editor_signals


def record(msg: str, service: str = 'Greeting') -> dict:
    return {'kind': 'log', 'service': service, 'instance': service.lower() + '.1', 'pid': 1, 'host': 'vm',
            'ts': 0.0, 'level': 'INFO', 'logger': 'print', 'msg': msg, 'trace': '', 'span': ''}


class App:
    """The app's side of the feed: batches as they come; takes each at once unless told not to."""

    def __init__(self, takes: bool = True):
        self.takes = takes
        self.batches: list = []
        self.lock = threading.Lock()
        self.feed: localfeed.LocalFeed | None = None

    def __call__(self, kind, payload):
        if kind != 'logs':
            return
        with self.lock:
            self.batches.append(payload)
        if self.takes:
            self.feed.logs_taken()

    def lines(self) -> list[str]:
        with self.lock:
            return [r['msg'] for b in self.batches for r in b.records]


def feed_and_app(monkeypatch, takes: bool = True):
    monkeypatch.setattr(localfeed.LocalFeed, '_connect', lambda self: None)  # no cluster here
    printer = Printer(console=Console(file=io.StringIO()))
    feed = localfeed.LocalFeed(printer, 'hub://127.0.0.1:1', 'node.yml', lambda: None)
    app = App(takes)
    app.feed = feed
    feed.attach(app)
    return printer, feed, app


def test_five_records_then_one_more_are_each_delivered_once(monkeypatch):
    printer, feed, app = feed_and_app(monkeypatch)
    try:
        printer.record(record('before'))
        feed.follow_logs(None, 'DEBUG')
        wait_until(lambda: app.lines() == ['before'], message='the history')
        for n in range(5):
            printer.record(record('line %d' % n))
        time.sleep(0.05)  # the scenario: the sixth comes while the pump gathers the five
        printer.record(record('line 5'))
        printer.record(record('marker'))
        wait_until(lambda: 'marker' in app.lines(), message='every record')
        time.sleep(3 * localfeed.BATCH)  # rounds enough for the pump to send anything again (it must not)
        printer.record(record('marker 2'))
        wait_until(lambda: 'marker 2' in app.lines(), message='the second marker')
        assert app.lines() == ['before', *('line %d' % n for n in range(6)), 'marker', 'marker 2']
    finally:
        feed.stop()


def test_one_batch_in_flight_while_the_app_does_not_take_them_and_what_is_kept_is_bounded(monkeypatch):
    printer, feed, app = feed_and_app(monkeypatch, takes=False)
    try:
        feed.follow_logs(None, 'DEBUG')
        printer.record(record('first'))
        wait_until(lambda: app.batches, message='the first batch')
        count = 0
        deadline = time.monotonic() + 1.0  # ten pump rounds' worth of a chatty service
        while time.monotonic() < deadline:
            for _ in range(500):
                printer.record(record('flood %d' % count))
                count += 1
            time.sleep(0.01)
        assert len(app.batches) == 1  # the app took none: nothing more was posted
        assert count > localfeed.KEPT and len(feed._records) == localfeed.KEPT
        feed.logs_taken()  # the app takes it: one batch with the newest kept, then none until taken
        wait_until(lambda: len(app.batches) == 2, message='the next batch')
        assert [r['msg'] for r in app.batches[1].records] == ['flood %d' % n for n in range(count - localfeed.KEPT,
                                                                                             count)]
        printer.record(record('last'))
        feed.logs_taken()
        wait_until(lambda: len(app.batches) == 3, message='the batch after')
        assert [r['msg'] for r in app.batches[2].records] == ['last']
    finally:
        feed.stop()


def test_warnings_logged_while_the_dashboard_runs_go_to_the_timeline_not_to_stderr(capfd):
    printer = Printer(console=Console(file=io.StringIO()))
    root = logging.getLogger()
    before, hook = root.handlers[:], threading.excepthook
    stderr_handler = logging.StreamHandler(sys.stderr)  # as basicConfig leaves it
    root.addHandler(stderr_handler)
    try:
        with nodeapp.logging_to_timeline(printer):
            logging.getLogger('fannode.node.cgroups').warning('no cgroup v2 here; limits are sampled')
            logging.getLogger('fannode.node.cgroups').info('not worth a line')
            try:
                {}['verb']
            except KeyError:
                logging.getLogger('fannode.node.control').exception('control verb failed\nmore lines')
            thread = threading.Thread(target=lambda: logging.getLogger('asyncio').error('Task exception was '
                                                                                         'never retrieved'))
            thread.start()
            thread.join()
            thread = threading.Thread(target=lambda: 1 / 0, name='sampler')
            thread.start()
            thread.join()
            with warnings.catch_warnings():
                warnings.simplefilter('always')  # not pytest's "error"
                line = sys._getframe().f_lineno + 1
                warnings.warn('old API', DeprecationWarning)
        assert root.handlers == before + [stderr_handler] and threading.excepthook is hook
        entries = [(e['kind'], e['text']) for e in printer.timeline.entries]
        assert entries == [('warning', 'fannode.node.cgroups: no cgroup v2 here; limits are sampled'),
                           ('error', "fannode.node.control: control verb failed: KeyError: 'verb'"),
                           ('error', 'asyncio: Task exception was never retrieved'),
                           ('error', 'thread sampler: uncaught: ZeroDivisionError: division by zero'),
                           ('warning', 'py.warnings: %s:%d: DeprecationWarning: old API' % (__file__, line))]
        assert capfd.readouterr().err == ''
    finally:
        root.removeHandler(stderr_handler)


class Gone(io.StringIO):
    def write(self, text):
        raise OSError(errno.EIO, 'Input/output error')


def test_the_closing_lines_are_the_events_lines_and_a_terminal_gone_is_no_error():
    out = io.StringIO()
    printer = Printer(console=Console(file=out, width=200))
    printer.event('stopping: services finish running work (signal again to kill now)')
    printer.event('stopped')
    printed = out.getvalue()
    out.seek(0)
    out.truncate()
    printer.records = lambda r: None  # the dashboard had the terminal
    nodeapp.closing(printer)
    assert out.getvalue() == printed and printed.count('\n') == 2 and ' node stopped\n' in printed

    gone = Printer(console=Console(file=Gone(), width=200))
    gone.event('stopped')  # the terminal closed (SIGHUP): nothing printed, nothing raised
    nodeapp.closing(gone)
    assert gone.closed


def test_the_editors_ctrl_c_and_ctrl_backslash_do_not_reach_the_node():
    got = []
    before = signal.signal(signal.SIGINT, lambda *_: got.append('stop the node'))
    try:
        with editor_signals():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGQUIT)  # the default would core-dump this process
            time.sleep(0)  # Python runs handlers between bytecodes
        assert got == []
        os.kill(os.getpid(), signal.SIGINT)
        wait_until(lambda: got == ['stop the node'], message='the handler back after the editor')
        assert signal.getsignal(signal.SIGQUIT) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, before)


class FakeNode:
    def __init__(self):
        self.stop_requested = threading.Event()
        self.signals = 0
        self.got: list[int] = []

    def on_signal(self, signum=signal.SIGINT):
        self.signals += 1
        self.got.append(signum)
        self.stop_requested.set()


def test_stop_once_never_escalates_while_stop_does():
    import asyncio
    node = FakeNode()
    runner = nodeapp.NodeThread(node, ('', ''), '')  # type: ignore[arg-type]
    runner.loop = asyncio.new_event_loop()
    try:
        runner.stop_once()
        runner.stop_once()
        runner.loop.run_until_complete(asyncio.sleep(0))
        assert node.signals == 1
        runner.stop(signal.SIGTERM)
        runner.loop.run_until_complete(asyncio.sleep(0))
        assert node.got[1:] == [signal.SIGTERM]  # passed on as it came: the node decides (a SIGTERM waits)
    finally:
        runner.loop.close()
    runner.stop()  # the loop closed: nothing, no error


def test_the_app_tells_the_feed_each_log_batch_it_took_and_the_log_pane_shows_it_once():
    from dashboard_helpers import FixedFeed
    from top_helpers import run, until

    from fannode.tui.dashboard import DashboardApp
    from fannode.tui.rows import LogBatch
    from fannode.tui.screens.logs import LogScreen

    class Feed(FixedFeed):
        taken = 0

        def logs_taken(self):
            self.taken += 1

    feed = Feed()
    app = DashboardApp(feed)

    async def test(pilot):
        await pilot.press('l')
        await until(pilot, lambda: isinstance(app.screen, LogScreen), message='the log pane')
        before = feed.taken
        app.deliver('logs', LogBatch(app.screen.follow, (record('one line'),)))
        await until(pilot, lambda: feed.taken == before + 1, message='the batch taken')
        assert [r['msg'] for r in app.screen.records].count('one line') == 1
    run(app, test)
