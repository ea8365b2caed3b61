"""The watcher every block runs: fannode.node.watcher's GroupWatcher, reaping before it
manages, and letting go of a dead process's pipes when it reaps it; and the node's arbiter,
which looks for dead children without first mapping every pid to its watcher.

A block stops the processes it scales away (or replaces in a rollout) itself, and keeps
circus' target at what it wants plus those still stopping; their exit, seen through the
after_reap hook, lowers the target. circus' periodic check drops a dead process without
that hook and then spawns up to the target: a process stopped on purpose was replaced by
a new one, stopped again a moment later. Reaping first runs the hook.

circus closes a reaped process's pipes without taking them off the loop when their end
of file was not read yet; the next pipe given the same number in another watcher (a
rollout runs two per block) then fails to start ("fd added twice"). What is left in them
is read first, so no last line is lost.
"""
from __future__ import annotations

import os
import select
from typing import Any

from circus.arbiter import Arbiter
from circus.process import get_status
from psutil import STATUS_DEAD, STATUS_ZOMBIE, NoSuchProcess
from tornado import gen
from tornado.ioloop import IOLoop

from fannode.node.watcher import GroupWatcher

DRAIN_CHUNKS = 64  # reads of what a dead process left in its pipe (a child of its own may hold it open)


class ReapingArbiter(Arbiter):
    def reap_processes(self) -> None:
        """circus' own, except that it mapped every watched pid to its watcher on each tick
        (0.2 s) before asking whether any child had exited (at 200 processes, ~0.3 % of a
        core for nothing): the map is made once one has."""
        watchers = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # no child left
                return
            if not pid:
                return
            if watchers is None:
                watchers = {process.pid: watcher for watcher in self.iter_watchers() if not watcher.is_stopped()
                            for process in watcher.processes.values()}
            watcher = watchers.get(pid)
            if watcher is not None:
                watcher.reap_process(pid, status)


class ReapingWatcher(GroupWatcher):
    @gen.coroutine
    def manage_processes(self) -> Any:
        if self.is_stopped():
            return
        reaped = False
        for process in list(self.processes.values()):
            if _gone(process):  # reap_process waits for live ones
                self.reap_process(process.pid)
                reaped = True
        # circus' pass reads every process's status again, to do nothing when none died and
        # the count is right: skipped then (at 200 processes, a tick every 0.2 s, that
        # second read was about a third of an idle node's CPU)
        if reaped or self.max_age or len(self.processes) != self.numprocesses:
            yield super().manage_processes()

    def reap_process(self, pid: int, status: Any = None) -> Any:
        process = self.processes.get(pid)
        if process is not None and self.stream_redirector is not None:
            self.drain(process)
        return super().reap_process(pid, status)

    def drain(self, process: Any) -> None:
        redirector = self.stream_redirector
        for _, pipe in redirector.get_process_pipes(process):
            try:
                fd = pipe.fileno()
            except ValueError:  # closed already
                continue
            for _ in range(DRAIN_CHUNKS):
                handler = redirector._active.get(fd)
                if handler is None or not select.select([fd], [], [], 0)[0]:
                    break
                handler(fd, IOLoop.READ)  # at the end of file it takes the pipe off the loop
            redirector.remove_fd(fd)


def _gone(process: Any) -> bool:
    """`process.status in (DEAD_OR_ZOMBIE, UNEXISTING)`, asked every tick (0.2 s) of every
    process: at 200 processes those psutil reads (two of /proc/PID/stat, ~60 µs) were most of
    an idle node's CPU. A child of ours is asked with waitid, without reaping it (~2 µs);
    any other process with one read of /proc/PID/stat."""
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # not our child, or reaped already
        pass
    try:
        return get_status(process._worker) in (STATUS_ZOMBIE, STATUS_DEAD)
    except NoSuchProcess:
        return True
