"""The log hub's ring on disk: the records it keeps, in SQLite beside the journal, so
`tail -n` and `trace` answer the same after the hub is killed and started again.

A separate file from the journal (NAME.logs.sqlite3): logs come by the thousand a second
and need not be as safe as events, so they are written in batches (the hub's 10 ms tick),
in WAL mode with synchronous=NORMAL — a killed hub loses at most the last tick's records,
a power cut what the OS had not written yet. The ring is bounded by a count and by bytes
(encoded); past either, the oldest tenth goes in one DELETE, not one row at a time.
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

SCHEMA = 'CREATE TABLE IF NOT EXISTS logs (id INTEGER PRIMARY KEY, size INTEGER NOT NULL, record BLOB NOT NULL)'


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
        self.count, self.bytes = self.db.execute('SELECT count(*), coalesce(sum(size), 0) FROM logs').fetchone()
        self.pending: list[tuple[int, bytes]] = []
        # The hub's one loop is its only user, and a pack never yields to another greenlet.
        self._pack = msgpack.Packer(use_bin_type=True, datetime=False).pack

    def add(self, record: dict[str, Any]) -> None:
        self.extend((record,))

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        """Queue records for the next flush. A record of plain values is encoded by one msgpack
        Packer kept for the purpose (the bytes `serial.dumps` makes, without a Packer made each
        time); one with a value only fannode's codec carries (a date, a big int) by the codec."""
        pack, pending = self._pack, self.pending
        for record in records:
            try:
                blob = pack(record)
            except (TypeError, ValueError, OverflowError):
                blob = serial.dumps(record)
            pending.append((len(blob), blob))

    def flush(self) -> None:
        """Write what came since the last flush, in one transaction; trim when over."""
        if not self.pending:
            return
        rows, self.pending = self.pending, []  # dropped on failure: never a growing backlog
        self.db.execute('BEGIN')
        try:
            self.db.executemany('INSERT INTO logs (size, record) VALUES (?, ?)', rows)
            self.count += len(rows)
            self.bytes += sum(size for size, _ in rows)
            if self.count > KEEP_RECORDS or self.bytes > KEEP_BYTES:
                self._trim()
            self.db.execute('COMMIT')
        except BaseException:
            self.db.execute('ROLLBACK')
            self.count, self.bytes = self.db.execute('SELECT count(*), coalesce(sum(size), 0) FROM logs').fetchone()
            raise

    def _trim(self) -> None:
        extra = self.count - int(KEEP_RECORDS * TRIM)
        if self.bytes > KEEP_BYTES * TRIM:  # as many rows as the excess takes at the average size
            extra = max(extra, int((self.bytes - KEEP_BYTES * TRIM) * self.count / max(1, self.bytes)) + 1)
        self.db.execute('DELETE FROM logs WHERE id < (SELECT id FROM logs ORDER BY id LIMIT 1 OFFSET ?)',
                        (max(1, min(extra, self.count - 1)),))
        self.count, self.bytes = self.db.execute('SELECT count(*), coalesce(sum(size), 0) FROM logs').fetchone()

    def newest(self) -> Iterator[dict[str, Any]]:
        """The records kept, newest first (the caller stops when its memory is full)."""
        for (blob,) in self.db.execute('SELECT record FROM logs ORDER BY id DESC'):
            try:
                record = serial.loads(blob)
            except Exception:  # a row from another version, or damaged: skipped, not fatal
                continue
            if type(record) is dict:
                yield record

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.db.close()
