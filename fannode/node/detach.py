"""`fannode up -D`: the node runs headless in the background, and the command returns once
it answers on its control socket.

The command forks twice (the middle process calls setsid() and exits at once), so the node
has no terminal, is nobody's child but init's, and a closing shell cannot hang it up.
The grandchild goes on in `fannode up` as if run by hand, with stdin from /dev/null and
stdout and stderr into a pipe that a thread of its own copies into a rotating log file
(fannode.node.logfiles.RotatingFile): what one would see on a terminal, as piped output
prints it. The command waits, on a status pipe, for the grandchild's pid, then until
the control socket answers with that pid (the node holds the lock by then), or for the
grandchild's last line if it exits first (`a node is already running ... (pid N)`, a
socket that cannot be bound): that line is the command's error. The node writes its own
pidfile once it holds the lock (`holds_lock`) and removes it as it exits, so a node that
stops before the command has seen it answer leaves none behind.

Everything the node does to its children (process groups, PDEATHSIG, the watchdog,
fannode.node.orphans) is the same: it is the same code, in a process without a terminal.
"""
from __future__ import annotations

import atexit
import collections
import os
import select
import sys
import threading
import time
from typing import Any

from fannode.exceptions import FannodeError
from fannode.node import paths
from fannode.node.logconf import LogSpec

START_WAIT = 30.0    # seconds the command waits for the control socket to answer
NODE_LOG = '_node.log'  # under `logs.dir`: no block can be called that (names start with [A-Za-z0-9])

_pidfile: str | None = None  # in a detached node: its pidfile, written once it holds the lock


def log_path(node_file: str, logs: LogSpec | None) -> str:
    """Where a detached node's output goes: beside its control socket, or in `logs.dir`."""
    if logs is not None:
        return os.path.join(logs.dir, NODE_LOG)
    return paths.node_path(node_file, 'log')


def pid_path(node_file: str) -> str:
    return paths.node_path(node_file, 'pid')


def read_pid(node_file: str) -> int | None:
    """The pid in the pidfile, if there is one (a node that was SIGKILLed leaves it)."""
    return _pid_in(pid_path(node_file))


def _pid_in(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read(20).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def start(node_file: str, logs: LogSpec | None) -> int | None:
    """Fork the node off. In the command: the exit code, once the node answers (or the
    node's error, raised). In the node: None, and `fannode up` goes on."""
    log = log_path(node_file, logs)
    spec = logs if logs is not None else LogSpec(os.path.dirname(log))
    pidfile = pid_path(node_file)  # a runtime dir too long for the sockets is said here, not in the log
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:  # pragma: no cover - runs in the forked processes
        try:
            os.close(read)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _become_node(write, log, spec, pidfile)
        except BaseException:
            os._exit(1)
        return None
    os.close(write)
    os.waitpid(middle, 0)
    try:
        return _wait_started(node_file, read, log)
    finally:
        os.close(read)


# -- in the command -------------------------------------------------------------------


def _wait_started(node_file: str, status: int, log: str) -> int:
    from fannode.node.client import NodeClient
    client = NodeClient(node_file)
    received = b''
    pid: int | None = None
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if select.select([status], [], [], 0.05)[0]:
            chunk = os.read(status, 4096)
            if not chunk:  # the node exited before it answered: its last line says why
                break
            received += chunk
            first = received.split(b'\n', 1)[0]
            if pid is None and b'\n' in received and first.startswith(b'pid '):
                pid = int(first[4:])
        if pid is not None and client.running and _answers(client) == pid:
            print('node started (pid %d); logs: %s; fannode attach | fannode ps | fannode down' % (pid, log))
            return 0
    else:
        raise FannodeError('the node (pid %s) did not answer within %gs; it may still be starting: see %s'
                           % (pid or '?', START_WAIT, log))
    lines = [line for line in received.decode('utf-8', 'replace').splitlines()[1:] if line.strip()]
    if not lines:
        raise FannodeError('the node exited at start; see %s' % log)
    last = lines[-1]
    if last.startswith('error: '):  # the one line `fannode up` says, as it would in a terminal
        raise FannodeError(last[len('error: '):])
    raise FannodeError('the node exited at start: %s (see %s)' % (last.strip(), log))


def answering(client: Any, timeout: float) -> int:
    """The pid of the node answering on the control socket, as it says (`up -D` and
    `fannode down` ask it); FannodeError when none answers (or its answer has no pid)."""
    reply = client.ps(timeout=timeout)
    try:
        return int(reply['pid'])
    except (KeyError, TypeError, ValueError):
        raise FannodeError('the node on the control socket answered without its pid') from None


def _answers(client: Any) -> int | None:
    try:
        return answering(client, 0.5)
    except FannodeError:
        return None


# -- in the node ------------------------------------------------------------------------


def holds_lock() -> None:
    """`fannode up` took the node's lock: a detached node writes its pidfile now (a second
    `up -D`, refused by the lock, never overwrites the first one's). Elsewhere nothing."""
    if _pidfile is not None:
        fd = os.open(_pidfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write('%d\n' % os.getpid())


def _become_node(status: int, log: str, spec: LogSpec, pidfile: str) -> None:  # pragma: no cover - forked
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    read, write = os.pipe()
    os.dup2(write, 1)
    os.dup2(write, 2)
    os.close(write)
    pump = Pump(read, log, spec)
    pump.start()
    os.write(status, b'pid %d\n' % os.getpid())
    global _pidfile
    _pidfile = pidfile

    def at_exit() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(devnull, 1)  # the last write ends of the output pipe: the pump sees its end
        os.dup2(devnull, 2)
        pump.join(2.0)
        try:
            os.write(status, '\n'.join(pump.last).encode('utf-8', 'replace') + b'\n')
        except OSError:  # the command returned long ago: nobody reads
            pass
        os.close(status)
        if _pid_in(pidfile) == os.getpid():  # a node refused by the lock leaves the other's
            os.unlink(pidfile)

    atexit.register(at_exit)


class Pump(threading.Thread):
    """The node's output, from the pipe on its stdout and stderr into the log file; the
    last lines kept for the command, in case the node exits at start."""

    def __init__(self, fd: int, path: str, spec: LogSpec):
        super().__init__(name='fannode-detached-output', daemon=True)
        from fannode.node.logfiles import RotatingFile
        self.fd = fd
        self.file = RotatingFile(path, spec, self.warned)
        self.last: collections.deque[str] = collections.deque(maxlen=5)
        self.partial = b''
        self.looked = 0.0

    def warned(self, text: str) -> None:
        self.last.append(text)  # nowhere else to say it: stdout is this pipe

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                break
            now = time.monotonic()
            if now >= self.looked + 1.0:  # logrotate moved it away: a new file (once a second, a stat)
                self.looked = now
                self.file.reopen_if_moved()
            self.file.write(chunk)
            self.file.flush()
            *lines, self.partial = (self.partial + chunk).split(b'\n')
            self.partial = self.partial[-4096:]
            self.last.extend(line.decode('utf-8', 'replace') for line in lines[-5:] if line.strip())
        self.file.close()
        os.close(self.fd)
