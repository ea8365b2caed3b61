"""The lock of a node.yml: `fannode up` holds it while the node runs, so a second node of
the same file is refused, and others look at it to know whether a node runs.

A write lock of the fcntl kind on the whole file (an open file description lock where Linux
has them: closing some other descriptor of the file does not drop it), because that kind
can be looked at without being taken (F_GETLK). With flock() the only way to look was to
take a shared lock for an instant, and a `fannode up` starting at that instant failed as if
a node ran. The kernel drops the lock with the process, even on SIGKILL."""
from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
from typing import IO

from fannode.exceptions import FannodeError

# Linux's struct flock: l_type, l_whence, l_start, l_len (off_t), l_pid, padding.
_FLOCK = 'hhqqi4x'
_SET = getattr(fcntl, 'F_OFD_SETLK', fcntl.F_SETLK)
_GET = getattr(fcntl, 'F_OFD_GETLK', fcntl.F_GETLK)
BUSY = (errno.EAGAIN, errno.EACCES)  # what F_SETLK fails with when the lock is held
SHARED_WAIT = 1.0  # seconds `up` waits out a shared lock: a look, not a node


def _lock(fd: int, command: int, kind: int) -> int:
    """fcntl() on a lock of the whole file; the kind found, for F_GETLK."""
    answer = fcntl.fcntl(fd, command, struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0))
    return int(struct.unpack(_FLOCK, answer)[0])


def take_lock(path: str, node_file: str) -> IO[str]:
    """The node's lock (0600, held while the file stays open, with the node's pid in it),
    or the one-line error naming who has it."""
    try:
        lock = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600), 'r+')
    except OSError as e:  # ELOOP: a symlink put in its place
        raise FannodeError('cannot open the lock %s: %s' % (path, e.strerror)) from None
    deadline = time.monotonic() + SHARED_WAIT
    while True:
        try:
            _lock(lock.fileno(), _SET, fcntl.F_WRLCK)
            break
        except OSError as e:
            if e.errno not in BUSY:
                lock.close()
                raise FannodeError('cannot lock %s: %s' % (path, e.strerror)) from None
        # Someone else's shared lock (a look at it) goes in an instant; a node's stays.
        if _lock(lock.fileno(), _GET, fcntl.F_WRLCK) == fcntl.F_WRLCK or time.monotonic() > deadline:
            pid = lock.read(20).strip()
            lock.close()
            raise FannodeError('a node is already running for %s (pid %s)' % (
                os.path.abspath(node_file), pid if pid.isdigit() else '?'))
        time.sleep(0.01)
    os.fchmod(lock.fileno(), 0o600)  # a lock file left by an older fannode may be 0644
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def is_locked(path: str) -> bool:
    """Whether a node holds the lock at `path`: looked at, never taken."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        return _lock(fd, _GET, fcntl.F_WRLCK) != fcntl.F_UNLCK
    except OSError:
        return False
    finally:
        os.close(fd)
