"""circus processes forked from a block's template (fannode.node.preload) rather than
started with fork and exec.

circus keeps its part: the watcher counts, spawns, reaps and restarts them, signals their
groups and reads their pipes. Only the way a process comes to be differs: the node makes the
two pipes, the template forks the worker with them as stdout and stderr, and the worker is
the node's child (the node is a subreaper). When the template cannot make one, circus'
own spawn runs instead, so a block never waits on its template.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import psutil

from fannode.node.preload import Template, TemplateBusy, TemplateError
from fannode.node.reapwatcher import ReapingWatcher
from fannode.node.watcher import GroupProcess


class Forked(psutil.Process):
    """The worker as circus' Process sees its Popen: a pid, the two pipes, a returncode."""

    def __init__(self, pid: int, stdout: Any, stderr: Any):
        super().__init__(pid)
        self.stdout, self.stderr = stdout, stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already (circus' arbiter waits for any child)
                if not self.is_running():
                    self.returncode = 0  # as subprocess says when it cannot know
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


class PreloadProcess(GroupProcess):
    def spawn(self) -> None:
        watcher = self.watcher
        template = watcher.template() if watcher is not None else None
        if template is None:
            return super().spawn()
        watcher.key = template.key  # in use: fannode.node.launch.keep_templates
        args = self.format_args()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            pid = template.fork(['fannode', *args[watcher.skip:]], {k: str(v) for k, v in self.env.items()},
                                self.working_dir, dict(self.rlimits), (out_w, err_w))
        except TemplateError as e:
            os.close(out_r)
            os.close(err_r)
            if not isinstance(e, TemplateBusy):  # one still importing is kept for the next
                watcher.failed(template)
            return super().spawn()
        finally:
            os.close(out_w)
            os.close(err_w)
        self.started = time.time()
        self._worker = Forked(pid, os.fdopen(out_r, 'rb', 0), os.fdopen(err_r, 'rb', 0))
        return None


class PreloadWatcher(ReapingWatcher):
    """A block's watcher whose processes come from its template. `template` gives the
    current one (a fresh one after a failure); `skip` is how many words of the command
    stand for `fannode` (`python -m fannode` is three)."""

    def __init__(self, *args: Any, template: Callable[[], Template | None], skip: int,
                 failed: Callable[[Template], None], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.template, self.skip, self.failed = template, skip, failed
        self.key: tuple[Any, ...] | None = None

    @property
    def _process_class(self) -> type:
        return PreloadProcess
