"""Stopping a running node from another process (`fannode down`, the dashboard's stop key)
and waiting until it and everything it started are gone.

The node to stop is the one answering on the control socket of the node.yml: its answer
carries its pid, which is the proof that the pid is our node and not a process that took a
stale pidfile's number (a node already stopping no longer answers: then the `fannode up`
holding the lock of the node.yml). It gets SIGTERM, as Ctrl-C would (services stop in the
reverse of the start order, then the hub), and every process under it at that moment — its
blocks' processes, what they started, the watchdog — is waited for by pid. A node already
stopping takes a second SIGTERM as the same graceful stop (a second Ctrl-C kills at once),
so a second `fannode down` only waits too. Past the timeout the node gets SIGKILL (its
children die with it: PDEATHSIG and the watchdog), then whatever is still left.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Callable

import psutil

from fannode.exceptions import FannodeError

PROGRESS_AFTER = 1.0   # seconds before "stopping: N processes left" lines start
KILL_WAIT = 5.0        # seconds for killed processes to be gone


@dataclass
class Stopped:
    file: str
    pid: int
    processes: int       # the node's and all under it when it was asked to stop
    seconds: float
    killed: bool         # the timeout passed: what was left got SIGKILL

    def as_json(self) -> dict[str, object]:
        return {'file': self.file, 'pid': self.pid, 'processes': self.processes,
                'seconds': round(self.seconds, 3), 'killed': self.killed}


def tree(pid: int) -> list[psutil.Process]:
    """The node and every process under it, by parent pid (a new session or process
    group does not hide a child)."""
    try:
        node = psutil.Process(pid)
        return [node, *node.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running: a zombie has stopped, whoever is to reap it."""
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.NoSuchProcess:
            pass
    return left


def left(count: int) -> str:
    """The progress line of a stop, as `fannode down` and the dashboard say it."""
    return 'stopping: %d process%s left' % (count, '' if count == 1 else 'es')


def stop(node_file: str, timeout: float, progress: Callable[[int], None] = lambda n: None,
         expected: int | None = None) -> Stopped:
    """Stop the node running `node_file`; NotRunning when there is none. With `expected`,
    only the node of that pid (a dashboard stops the node it shows, not a newer one)."""
    pid = node_pid(node_file)
    if expected is not None and pid != expected:
        raise FannodeError('the node for %s is pid %d now, not %d: not stopped' % (node_file, pid, expected))
    procs = tree(pid)
    started = time.monotonic()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # it exited between its answer and now
        procs = []
    killed = False
    said = started + PROGRESS_AFTER
    left = alive(procs)
    while left:
        now = time.monotonic()
        if now - started >= timeout:
            killed = True
            kill(left)
            break
        if now >= said:
            progress(len(left))
            said = now + PROGRESS_AFTER
        time.sleep(0.05)
        left = alive(left)
    if killed:
        deadline = time.monotonic() + KILL_WAIT
        while alive(procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        stuck = alive(procs)
        if stuck:
            raise FannodeError('%d processes of the node still run after SIGKILL: %s' % (
                len(stuck), ' '.join(str(p.pid) for p in stuck)))
    _remove_pidfile(node_file, pid)
    return Stopped(os.path.abspath(node_file), pid, len(procs), time.monotonic() - started, killed)


def node_pid(node_file: str) -> int:
    """The pid of the node running `node_file`, as it says itself; NotRunning when none
    does. A node that holds the lock but does not answer (busy, or broken) is known by the
    pid in its lock file, if that process is a `fannode up`."""
    from fannode.node import detach, lockfile, paths
    from fannode.node.client import NodeClient
    client = NodeClient(node_file)
    try:
        return detach.answering(client, 5.0)
    except FannodeError as e:
        lock = paths.node_path(node_file, 'lock')
        pid = _lock_holder(lock) if lockfile.is_locked(lock) else None
        if pid is not None:  # also a node stopping: its control socket is closed by then
            return pid
        if not client.running:
            raise
        raise FannodeError('%s; and no `fannode up` process holds its lock' % e) from None


def _lock_holder(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read(20).strip()
        proc = psutil.Process(int(text))
        argv = proc.cmdline()
    except (OSError, ValueError, psutil.Error):
        return None
    words = ' '.join(argv).split()  # circus titles the node `fannode up` (setproctitle): one word with spaces
    is_up = 'up' in words and any(part.endswith(('fannode', 'fannode.cli')) for part in words)
    return proc.pid if is_up else None


def kill(procs: list[psutil.Process]) -> None:
    """The node first: its children get SIGKILL from the kernel, their groups from the watchdog."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def _remove_pidfile(node_file: str, pid: int) -> None:
    """A killed node cannot remove its own pidfile."""
    from fannode.node import detach
    if detach.read_pid(node_file) == pid:
        try:
            os.unlink(detach.pid_path(node_file))
        except FileNotFoundError:
            pass
