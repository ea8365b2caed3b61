"""`fannode up` in a terminal: the node and its dashboard in one process.

Textual wants the main thread (its terminal driver installs SIGTSTP, SIGCONT and SIGWINCH
handlers, which Python allows only there), and it must never hold up the supervisor. So
the node moves: its asyncio loop, with circus and every loop of the node, runs in a
thread of its own ('fannode-node'), and the main thread runs the app. Signals are the main
thread's: SIGTERM, SIGHUP and SIGINT from outside are handed to the node's loop (the same
graceful stop as without the dashboard; twice: kill now). Ctrl-C typed in the dashboard is
a key (the terminal is in raw mode): it asks, as `q` does; while `e`'s editor runs, Ctrl-C
and Ctrl-\\ are the editor's (fannode.tui.screens.node.editor_signals). What the node
logs goes to the timeline meanwhile (`logging_to_timeline`). circus' own signal handlers
(its controller installs some when the arbiter starts) are left out in that thread: the
node installs its own anyway, after circus'.

Rendering costs the node only the GIL: the app gets timeline entries and log records
handed over (fannode.tui.localfeed), and the node never waits for the screen.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from typing import Any, Callable, Iterator

from fannode.node.output import Printer
from fannode.node.supervisor import Node
from fannode.tui.nodefeed import NodeStopped

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _circus_without_signals() -> None:
    """circus' Controller registers signal handlers when the arbiter starts; from a thread
    other than the main one that raises ValueError."""
    from circus.controller import Controller
    if getattr(Controller, '_fannode_threads', False):
        return
    original = Controller._init_syshandler

    def init_syshandler(self: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            original(self)
        else:
            self.sys_hdl = _NoSignals()
    Controller._init_syshandler = init_syshandler
    Controller._fannode_threads = True


class _NoSignals:
    def stop(self) -> None:
        pass


class NodeThread:
    """The node's loop in a thread; `stop()` from any thread is the graceful stop a signal asks."""

    def __init__(self, node: Node, endpoints: tuple[str, str], control: str):
        self.node = node
        self.endpoints, self.control = endpoints, control
        self.loop: asyncio.AbstractEventLoop | None = None
        self.code = 0
        self.error: BaseException | None = None
        self.started = threading.Event()
        self.on_exit: Any = lambda code: None
        self.thread = threading.Thread(target=self._main, name='fannode-node')

    def start(self) -> None:
        _circus_without_signals()
        self.thread.start()
        self.started.wait()

    def _main(self) -> None:
        try:
            self.code = asyncio.run(self._run())
        except BaseException as e:  # noqa: BLE001 - raised again in the main thread, after the app
            self.error = e
            self.code = 1
        finally:
            self.started.set()
            self.on_exit(self.code)

    async def _run(self) -> int:
        self.loop = asyncio.get_running_loop()
        self.started.set()
        return await self.node.run(self.endpoints, self.control)

    def stop(self, signum: int = signal.SIGINT) -> None:
        """As the node's own handler does with `signum`: a graceful stop; a second Ctrl-C or
        SIGHUP kills at once, a second SIGTERM (another `fannode down`) does not."""
        self._call(lambda: self.node.on_signal(signum))

    def stop_once(self) -> None:
        """`q` confirmed: a graceful stop, never the kill a second signal means."""
        self._call(lambda: None if self.node.stop_requested.is_set() else self.node.on_signal())

    def _call(self, fn: Callable[[], None]) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:  # the loop closed meanwhile: the node has stopped
                pass


class TimelineLog(logging.Handler):
    """Warnings and errors logged while the dashboard owns the terminal (cgroups, circus,
    asyncio's "Task exception was never retrieved", a control verb's traceback) go to the
    node timeline, one line each, instead of over the screen Textual draws."""

    def __init__(self, printer: Printer):
        super().__init__(logging.WARNING)
        self.printer = printer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            parts = (record.getMessage().strip().splitlines() or [''])[:1]
            if record.exc_info and record.exc_info[1] is not None:  # the traceback's last line
                e = record.exc_info[1]
                parts.append('%s: %s' % (type(e).__name__, e))
            text = ': '.join([record.name, *(p for p in parts if p)])
            self.printer.timeline.record(text, kind=record.levelname.lower(), block='')
        except Exception:  # noqa: BLE001 - logging must never raise into the node
            self.handleError(record)


@contextlib.contextmanager
def logging_to_timeline(printer: Printer) -> Iterator[None]:
    """The root logger's handlers (basicConfig's holds the real stderr) swapped for a
    TimelineLog for the dashboard's lifetime; Python warnings and a thread's uncaught
    exception (both written to stderr otherwise) are logged there too."""
    root = logging.getLogger()
    previous, hook = root.handlers[:], threading.excepthook
    root.handlers[:] = [TimelineLog(printer)]
    logging.captureWarnings(True)
    threading.excepthook = _thread_failed
    try:
        yield
    finally:
        threading.excepthook = hook
        logging.captureWarnings(False)
        root.handlers[:] = previous


def _thread_failed(args: Any) -> None:
    if args.exc_type is not SystemExit:  # as threading's own hook: a thread's sys.exit() is no error
        logging.getLogger('thread %s' % getattr(args.thread, 'name', '?')).error('uncaught', exc_info=args.exc_value)


def run(node: Node, endpoints: tuple[str, str], control: str) -> int:
    """Run the node with its dashboard until the cluster stops; the node's exit code."""
    from fannode.tui.dashboard import DashboardApp
    from fannode.tui.localfeed import LocalFeed

    runner = NodeThread(node, endpoints, control)
    feed = LocalFeed(node.printer, node.topology.registry, node.topology.path, runner.stop_once)
    app = DashboardApp(feed)
    runner.on_exit = lambda code: app.deliver('stopped', NodeStopped(code))
    previous = {signum: signal.signal(signum, lambda got, _: runner.stop(got)) for signum in STOP_SIGNALS}
    try:
        with logging_to_timeline(node.printer):
            runner.start()
            app.run()
    finally:
        feed.stop()
        if runner.thread.is_alive():  # the app ended first (it failed): the cluster stops all the same
            runner.stop_once()
            while runner.thread.is_alive():
                runner.thread.join(0.2)  # a signal (a second Ctrl-C) can still kill at once
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if runner.error is not None:
        raise runner.error
    closing(node.printer)
    return runner.code


def closing(printer: Printer) -> None:
    """The end of the story on the terminal again (nothing if the terminal has gone: a
    clean stop after SIGHUP stays exit 0)."""
    printer.records = None
    for entry in list(printer.timeline.entries)[-5:]:
        printer.replay(entry)
