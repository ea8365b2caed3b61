"""Each block's output in a file of its own (node.yml `logs:`), rotated by size.

One file per block, `DIR/NAME.log`, its lines as the node prints them with the time in
front: `2026-12-05T01:25:40.123 greeting.2 │ text` (every worker of a block in one file,
as one reads the node's output; pm2 and process-compose do the same per process name).
When a write would take the file past `max_size`, NAME.log becomes NAME.log.1, .1 becomes
.2 … and the oldest past `backups` goes.

A small writer rather than logging's RotatingFileHandler: that one flushes after every
record (a system call per line: a busy child writes thousands a second, on the node's
loop) and prints a traceback to stderr when a write fails. Here lines go to a buffered
file, flushed half a second after the first unflushed line and when it rotates; rotating is
a few renames. A write that fails (disk full, the directory gone) is one warning per
file, the lines are dropped, and the next write tries again. A file removed or renamed
(logrotate without copytruncate) is made again: the first line after each flush looks.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import IO, Callable

from fannode.node.logconf import LogSpec

FLUSH_AFTER = 0.5   # seconds a line may wait in the buffer
BUFFER = 64 * 1024


class RotatingFile:
    def __init__(self, path: str, spec: LogSpec, warn: Callable[[str], None]):
        self.path, self.spec, self.warn = path, spec, warn
        self.file: IO[bytes] | None = None
        self.size = 0
        self.failing = False

    def _open(self) -> IO[bytes]:
        if self.file is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.file = open(self.path, 'ab', buffering=BUFFER)
            self.size = self.file.tell()
        return self.file

    def write(self, data: bytes) -> None:
        try:
            if self.size and self.size + len(data) > self.spec.max_size:
                self.rotate()
            self._open().write(data)
            self.size += len(data)
        except OSError as e:
            self._failed(e)

    def flush(self) -> None:
        if self.file is not None:
            try:
                self.file.flush()
                self.failing = False
            except OSError as e:
                self._failed(e)

    def reopen_if_moved(self) -> None:
        """Removed, or renamed by logrotate: the next line makes the file again."""
        if self.file is None:
            return
        try:
            moved = os.stat(self.path).st_ino != os.fstat(self.file.fileno()).st_ino
        except FileNotFoundError:
            moved = True
        except OSError:
            moved = False  # the write says what is wrong
        if moved:
            self.close()

    def rotate(self) -> None:
        self.close()
        self.size = 0  # whatever happens below: a failed rotation is tried again only at max_size
        keep = self.spec.backups
        try:
            if keep:
                for n in range(keep - 1, 0, -1):
                    older = '%s.%d' % (self.path, n)
                    if os.path.exists(older):
                        os.replace(older, '%s.%d' % (self.path, n + 1))
                os.replace(self.path, self.path + '.1')
            else:
                os.truncate(self.path, 0)
        except FileNotFoundError:  # someone removed NAME.log (or a backup): nothing to move
            pass

    def close(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            try:
                file.close()
            except OSError as e:
                self._failed(e)

    def _failed(self, e: OSError) -> None:
        file, self.file = self.file, None  # what it buffered is lost; the next write reopens
        if file is not None:
            try:
                file.close()
            except OSError:
                pass
        if not self.failing:
            self.failing = True
            self.warn('cannot write %s: %s; its lines are dropped until it can' % (self.path, e.strerror or e))


class LogFiles:
    """The node's log files, one per block (and the hub's), opened on the first line."""

    def __init__(self, warn: Callable[[str], None]):
        self.warn = warn
        self.files: dict[str, RotatingFile] = {}
        self.dirty: set[RotatingFile] = set()
        self.flushing: asyncio.TimerHandle | None = None
        self.second = -1
        self.stamp = ''

    def write(self, spec: LogSpec, block: str, index: int, text: str) -> None:
        # one file per path: during a rollout old and new processes of a block (whose
        # `logs:` may differ) write the same file, without reopening it line by line
        path = os.path.join(spec.dir, block + '.log')
        file = self.files.get(path)
        if file is None:
            file = self.files[path] = RotatingFile(path, spec, self.warn)
        file.spec = spec  # max_size and backups as the latest line's block says
        if self.flushing is None:  # the first line since the last flush: a stat per half second, not per line
            file.reopen_if_moved()
        now = time.time()
        if int(now) != self.second:  # strftime once a second, not once a line
            self.second = int(now)
            self.stamp = time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(now))
        line = '%s.%03d %s.%d │ %s\n' % (self.stamp, int(now * 1000) % 1000, block, index, text)
        file.write(line.encode('utf-8', 'replace'))
        self.dirty.add(file)
        if self.flushing is None:
            try:
                self.flushing = asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)
            except RuntimeError:  # no loop (tests): write through
                self.flush()

    def flush(self) -> None:
        self.flushing = None
        dirty, self.dirty = self.dirty, set()
        for file in dirty:
            file.flush()

    def close(self) -> None:
        if self.flushing is not None:
            self.flushing.cancel()
            self.flushing = None
        for file in self.files.values():
            file.close()
        self.dirty.clear()
