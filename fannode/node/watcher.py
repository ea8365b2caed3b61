"""circus' Watcher and Process, changed where the node needs them to behave otherwise.

- Signals go to the process group, not the pid. circus starts every process with
  setsid(), so its group is the process and whatever it started (`sh -c "a & b"`, a dev
  server's workers); stopping the pid alone left those running (circus#1044).
- Spawning follows the current target. circus works out how many processes to add once
  and then spawns them one by one, yielding between: `fannode scale web 0` or a revert of
  node.yml in the middle of a large scale-up went unheard until every spawn was done (or
  circus gave up with "Process count > numprocesses*2", and the node with it).
"""
from __future__ import annotations

import signal
from typing import Any

from circus.process import Process
from circus.util import tornado_sleep
from circus.watcher import Watcher
from tornado import gen

from fannode.node.orphans import signal_group


class GroupProcess(Process):  # circus has no types: Process is Any
    def send_signal(self, sig: int) -> None:
        if not signal_group(self.pid, sig):
            super().send_signal(sig)  # raises NoSuchProcess as circus expects

    def stop(self) -> None:
        # circus calls this for a process still alive after its graceful stop: SIGTERM
        # to the pid alone would leave the group
        if self.is_alive():
            signal_group(self.pid, signal.SIGTERM)
        super().stop()


class GroupWatcher(Watcher):
    @property
    def _process_class(self) -> type:
        return GroupProcess

    @gen.coroutine
    def spawn_processes(self) -> Any:
        """As circus', but the target is looked at again before each spawn."""
        if self.pending_socket_event:
            self._status = 'stopped'
            return
        while (len(self.processes) < self.numprocesses
               and not self.is_stopped() and not self.is_stopping()):
            if self.spawn_process() is False:
                yield self._stop()
                break
            yield tornado_sleep(0)  # let a new target (and everything else) in
