"""The log hub's ring on disk: the records it keeps, in SQLite beside the journal, so
`tail -n` and `trace` answer the same after the hub is killed and started again.

A separate file from the journal (NAME.logs.sqlite3): logs come by the thousand a second
and need not be as safe as events, so they are written in batches (the hub's 10 ms tick),
one row per batch (a msgpack list: a row per record cost the hub more than decoding it), in
WAL mode with synchronous=NORMAL — a killed hub loses at most the last tick's records, a
power cut what the OS had not written yet. The ring is bounded by a count of records and by
bytes (encoded); past either, the oldest tenth goes in one DELETE, not one row at a time.
A ring written a row per record (before 5 Dec 2026) is taken over as it is, a row a record.
"""
from __future__ import annotations

import os
import sqlite3
from typing import Any, Iterable, Iterator

import msgpack

from fannode.core import serial
from fannode.core.limits import MIB, setting

KEEP_RECORDS = setting('FANNODE_HUB_LOG_DISK_RECORDS', 200_000, 1000)
KEEP_BYTES = setting('FANNODE_HUB_LOG_DISK_BYTES', 256 * MIB, MIB)
TRIM = 0.9  # a trim leaves this share of the bounds: trims are rare and each is one statement
ROW = 4 * MIB  # encoded bytes of one row at most (a tick's records take more rows past it)

SCHEMA = ('CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, count INTEGER NOT NULL, '
          'size INTEGER NOT NULL, records BLOB NOT NULL)')
LEGACY = 'logs'  # a row per record: (id, size, record)


def ring_path(journal: str | None) -> str | None:
    """Where a hub with this journal keeps its log ring (None: no journal, no ring)."""
    if not journal or journal == ':memory:':
        return None
    base = journal[:-len('.sqlite3')] if journal.endswith('.sqlite3') else journal
    return base + '.logs.sqlite3'


class LogDisk:
    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute('PRAGMA journal_mode=WAL')
        self.db.execute('PRAGMA synchronous=NORMAL')
        self.db.execute(SCHEMA)
        self._take_over_legacy()
        self.count, self.bytes = self._totals()
        self.pending: list[dict[str, Any]] = []
        # The hub's one loop is its only user, and a pack never yields to another greenlet.
        self._pack = msgpack.Packer(use_bin_type=True, datetime=False).pack

    def _take_over_legacy(self) -> None:
        """The rows of a ring written a row per record, each kept as a batch of one, in order."""
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY,)).fetchone():
            self.db.execute('BEGIN')
            self.db.execute('INSERT INTO batches (count, size, records) SELECT 1, size, record FROM %s ORDER BY id'
                            % LEGACY)
            self.db.execute('DROP TABLE %s' % LEGACY)
            self.db.execute('COMMIT')

    def _totals(self) -> tuple[int, int]:
        count, size = self.db.execute('SELECT coalesce(sum(count), 0), coalesce(sum(size), 0) FROM batches').fetchone()
        return int(count), int(size)

    def add(self, record: dict[str, Any]) -> None:
        self.pending.append(record)

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        """Queue records for the next flush."""
        self.pending.extend(records)

    def flush(self) -> None:
        """Write what came since the last flush, as one row (more past ROW bytes), in one
        transaction; trim when over."""
        if not self.pending:
            return
        records, self.pending = self.pending, []  # dropped on failure: never a growing backlog
        rows = self._rows(records)
        self.db.execute('BEGIN')
        try:
            self.db.executemany('INSERT INTO batches (count, size, records) VALUES (?, ?, ?)',
                                [(count, len(blob), blob) for count, blob in rows])
            self.count += sum(count for count, _ in rows)
            self.bytes += sum(len(blob) for _, blob in rows)
            if self.count > KEEP_RECORDS or self.bytes > KEEP_BYTES:
                self._trim()
            self.db.execute('COMMIT')
        except BaseException:
            self.db.execute('ROLLBACK')
            self.count, self.bytes = self._totals()
            raise

    def _rows(self, records: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
        """(count, msgpack list) rows for `records`: one when they are plain values and fit in
        ROW bytes (one pack: the bytes `serial.dumps` makes); else each record encoded alone
        (by the codec when it needs it; one no codec can carry is left out), in rows of at
        most ROW bytes, or one of its own (as big as a record may be), so every row reads back."""
        try:
            blob = self._pack(records)
        except (TypeError, ValueError, OverflowError):
            blob = b''
        room = min(ROW, serial.MAX_MESSAGE)  # a bigger row would not read back
        if blob and len(blob) <= room:
            return [(len(records), blob)]
        limit = room - 5  # for the list's header
        rows: list[tuple[int, bytes]] = []
        row: list[bytes] = []
        size = 0
        for record in records:
            try:
                one = self._pack(record)
            except (TypeError, ValueError, OverflowError):
                try:
                    one = serial.dumps(record)
                except (TypeError, ValueError):
                    continue
            if row and size + len(one) > limit:
                rows.append(self._row(row))
                row, size = [], 0
            row.append(one)
            size += len(one)
        if row:
            rows.append(self._row(row))
        return rows

    @staticmethod
    def _row(blobs: list[bytes]) -> tuple[int, bytes]:
        return len(blobs), msgpack.Packer().pack_array_header(len(blobs)) + b''.join(blobs)

    def _trim(self) -> None:
        """The oldest rows go until what is left is within TRIM of both bounds; never the
        newest row (the tick just written), whatever it holds."""
        count, size = self.count, self.bytes
        last = None
        for row, n, bytes_ in self.db.execute('SELECT id, count, size FROM batches WHERE id < '
                                             '(SELECT max(id) FROM batches) ORDER BY id'):
            if count <= KEEP_RECORDS * TRIM and size <= KEEP_BYTES * TRIM:
                break
            last, count, size = row, count - n, size - bytes_
        if last is not None:
            self.db.execute('DELETE FROM batches WHERE id <= ?', (last,))
        self.count, self.bytes = self._totals()

    def newest(self) -> Iterator[dict[str, Any]]:
        """The records kept, newest first (the caller stops when its memory is full)."""
        for (blob,) in self.db.execute('SELECT records FROM batches ORDER BY id DESC'):
            try:
                kept = serial.loads(blob)
            except Exception:  # a row from another version, or damaged: skipped, not fatal
                continue
            for record in reversed(kept) if type(kept) is list else (kept,):
                if type(record) is dict:
                    yield record

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.db.close()
