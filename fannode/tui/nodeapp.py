"""`fannode up` in a terminal: the node and its dashboard in one process.

Textual wants the main thread (its terminal driver installs SIGTSTP, SIGCONT and SIGWINCH
handlers, which Python allows only there), and it must never hold up the supervisor. So
the node moves: its asyncio loop, with circus and every loop of the node, runs in a
thread of its own ('fannode-node'), and the main thread runs the app. Signals are the main
thread's: SIGTERM, SIGHUP and SIGINT from outside are handed to the node's loop (the same
graceful stop as without the dashboard; twice: kill now). Ctrl-C typed in the dashboard is
a key (the terminal is in raw mode): it asks, as `q` does. circus' own signal handlers
(its controller installs some when the arbiter starts) are left out in that thread: the
node installs its own anyway, after circus'.

Rendering costs the node only the GIL: the app gets timeline entries and log records
handed over (fannode.tui.localfeed), and the node never waits for the screen.
"""
from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any

from rich.text import Text

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

    def stop(self) -> None:
        """As the first signal does: a graceful stop (a second one kills at once)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.node.on_signal)
            except RuntimeError:  # the loop closed meanwhile: the node has stopped
                pass

    def stop_once(self) -> None:
        """`q` confirmed: a graceful stop, never the kill a second signal means."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(lambda: None if self.node.stop_requested.is_set() else self.node.on_signal())
            except RuntimeError:
                pass


def run(node: Node, endpoints: tuple[str, str], control: str) -> int:
    """Run the node with its dashboard until the cluster stops; the node's exit code."""
    from fannode.tui.dashboard import DashboardApp
    from fannode.tui.localfeed import LocalFeed

    runner = NodeThread(node, endpoints, control)
    feed = LocalFeed(node.printer, node.topology.registry, node.topology.path, runner.stop_once)
    app = DashboardApp(feed)
    runner.on_exit = lambda code: app.deliver('stopped', NodeStopped(code))
    previous = {signum: signal.signal(signum, lambda *_: runner.stop()) for signum in STOP_SIGNALS}
    try:
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
    node.printer.records = None
    for entry in list(node.printer.timeline.entries)[-5:]:  # the end of the story, on the terminal again
        node.printer.console.print(Text.assemble((_clock(entry['time']), 'dim'), ' node ', entry['text']),
                                   highlight=False, soft_wrap=True)
    return runner.code


def _clock(ts: float) -> str:
    import time
    return time.strftime('%H:%M:%S', time.localtime(ts))
