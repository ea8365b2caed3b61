"""The watcher every block runs: fannode.node.watcher's GroupWatcher, reaping before it
manages, and letting go of a dead process's pipes when it reaps it.

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

import select
from typing import Any

from circus.process import DEAD_OR_ZOMBIE, UNEXISTING
from tornado import gen
from tornado.ioloop import IOLoop

from fannode.node.watcher import GroupWatcher

DRAIN_CHUNKS = 64  # reads of what a dead process left in its pipe (a child of its own may hold it open)


class ReapingWatcher(GroupWatcher):
    @gen.coroutine
    def manage_processes(self) -> Any:
        if not self.is_stopped():
            for process in list(self.processes.values()):
                if process.status in (DEAD_OR_ZOMBIE, UNEXISTING):  # reap_process waits for live ones
                    self.reap_process(process.pid)
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
