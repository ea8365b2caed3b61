"""Nothing the node started outlives it, nor outlives the process it belongs to.

Each process circus starts leads a process group of its own (circus calls setsid()), and
whatever it starts stays in that group unless it moves itself out (a daemon's setsid). So:

- the node signals groups, never bare pids (fannode.node.watcher);
- a group is SIGKILLed the block's stop_timeout after its first SIGTERM, whether its
  process has exited by then or not: Groups keeps that one deadline, from whichever stop
  sent the signal (a scale-down, circus stopping a watcher, or the sweep, which stops the
  rest of a group whose process is gone: killed alone, or its children ignored SIGTERM);
- on its own SIGKILL the node can do nothing, so each child asks the kernel for SIGKILL
  when the node dies (PR_SET_PDEATHSIG; one generation only), and a watchdog process
  (fannode.node.watchdog) that outlives the node kills the groups it was told about.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable

import psutil

PR_SET_PDEATHSIG = 1
WATCHDOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'watchdog.py')

log = logging.getLogger(__name__)


def signal_group(pgid: int, signum: int) -> bool:
    """Signal a group; False when no process of it is left."""
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def live_groups(pgids: set[int]) -> set[int]:
    """Those of `pgids` with a process that is not a zombie (a group of zombies that
    nobody reaps still takes signals, and is gone for our purpose)."""
    found: set[int] = set()
    for proc in psutil.process_iter():
        try:
            pgid = os.getpgid(proc.pid)
            if pgid in pgids and proc.status() != psutil.STATUS_ZOMBIE:
                found.add(pgid)
        except (OSError, psutil.Error):
            pass
    return found


class Groups:
    """The process groups of the node's children, and the watchdog that knows them too."""

    def __init__(self) -> None:
        self.grace: dict[int, float] = {}      # pgid → the stop_timeout of its block
        self.lingering: dict[int, float] = {}  # pgid → when it gets SIGKILL: grace after its first SIGTERM
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.pipe: int | None = None
        self.warned = False

    # -- the watchdog ------------------------------------------------------------

    def start_watchdog(self) -> None:
        read, self.pipe = os.pipe()  # both close-on-exec: no child holds the pipe open
        try:
            self.watchdog = subprocess.Popen(
                [sys.executable, '-I', '-S', WATCHDOG], stdin=read, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)  # no Ctrl-C from the terminal
        finally:
            os.close(read)
        os.set_blocking(self.pipe, False)  # a stopped watchdog must not stop the node
        for pgid in self.grace:  # a new watchdog (the last one was killed) learns them all
            self.tell(b'+%d\n' % pgid)

    def tell(self, line: bytes) -> None:
        if self.pipe is None:
            return
        try:
            os.write(self.pipe, line)
        except BrokenPipeError:  # somebody killed the watchdog: start another
            self.close_pipe()
            self.start_watchdog()
        except BlockingIOError:
            if not self.warned:
                self.warned = True
                log.warning('the watchdog (pid %s) does not read; groups started now are not '
                            'covered if the node is killed', self.watchdog and self.watchdog.pid)

    def close_pipe(self) -> None:
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None
        if self.watchdog is not None:
            try:
                self.watchdog.wait(2.0)  # it exits at once; reaped, not left a zombie
            except subprocess.TimeoutExpired:
                self.watchdog.kill()
            self.watchdog = None

    # -- groups ------------------------------------------------------------------

    def add(self, pgid: int, grace: float) -> None:
        self.grace[pgid] = grace
        self.tell(b'+%d\n' % pgid)

    def forget(self, pgid: int) -> None:
        self.grace.pop(pgid, None)
        self.lingering.pop(pgid, None)
        self.tell(b'-%d\n' % pgid)

    def stopping(self, pgid: int) -> None:
        """The group is sent its stop signal now: its grace starts, unless it started at an
        earlier one (a second SIGTERM, or its leader exiting, gives no more time)."""
        if pgid in self.grace:
            self.lingering.setdefault(pgid, time.monotonic() + self.grace[pgid])

    def stop(self, pgid: int, signum: int = signal.SIGTERM) -> bool:
        """Signal the group to stop; the sweep kills it when its grace is over. False when
        no process of it is left."""
        if not signal_group(pgid, signum):
            return False
        self.stopping(pgid)
        return True

    def sweep(self, leaders: set[int]) -> None:
        """Groups whose leader is no longer one of `leaders` (every process the blocks
        have): what is left of them is stopped. Any group being stopped is killed once
        its grace is over, its leader gone or not."""
        for pgid in list(self.grace):
            if pgid not in leaders and pgid not in self.lingering and not self.stop(pgid):
                self.forget(pgid)
        now = time.monotonic()
        for pgid, deadline in list(self.lingering.items()):
            if now >= deadline:
                signal_group(pgid, signal.SIGKILL)
                self.forget(pgid)
            elif pgid not in leaders and not signal_group(pgid, 0):
                self.forget(pgid)  # stopped in time: nothing of it is left

    def kill_all(self) -> None:
        for pgid in list(self.grace):
            signal_group(pgid, signal.SIGKILL)

    async def drain(self) -> None:
        """At the end: every group is gone or killed, then the watchdog is let go."""
        self.sweep(set())
        while self.lingering:
            for pgid in set(self.lingering) - live_groups(set(self.lingering)):
                self.forget(pgid)
            self.sweep(set())  # kills those past their grace
            if self.lingering:
                await asyncio.sleep(0.05)
        self.close_pipe()


# -- children die with the node --------------------------------------------------


def die_with(parent: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith('linux') else None

    def preexec() -> None:
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the node died between fork and prctl
            os._exit(1)
    return preexec


def _popen(args: Any, preexec_fn: Callable[[], None] | None = None, **kwargs: Any) -> psutil.Popen:
    """circus' Popen, with the death signal after circus' own preexec function."""
    mine = die_with(os.getpid())

    def both() -> None:
        if preexec_fn is not None:
            preexec_fn()
        mine()
    return psutil.Popen(args, preexec_fn=both, **kwargs)


def patch_circus() -> None:
    """Chain the death signal into every Popen circus makes (called by the node; twice
    changes nothing)."""
    import circus.process

    circus.process.Popen = _popen
