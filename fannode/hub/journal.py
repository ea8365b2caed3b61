"""What the hub must not forget across a crash: durable queues and the events waiting
in them, dead letters, and the shared config. SQLite in WAL mode; the hub commits after each
request, before it answers, so an acknowledged emit is on disk (in the OS cache, which
survives the process being killed)."""
from __future__ import annotations

import os
import sqlite3
import time
from typing import cast

from fannode.core import serial
from fannode.core.limits import setting
from fannode.hub.broker import Broker, Entry

# Dead letters kept on disk: the newest, so a poison stream cannot fill the disk.
DEAD_KEPT = setting('FANNODE_HUB_DEAD_KEPT', 100_000, 1)
TRIM_EVERY = 100  # dead letters between trims: one DELETE per hundred, not per letter

SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, patterns BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (queue TEXT NOT NULL, tag INTEGER NOT NULL, event BLOB NOT NULL,
                                   attempt INTEGER NOT NULL, due REAL NOT NULL, PRIMARY KEY (queue, tag));
CREATE TABLE IF NOT EXISTS dead (id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,
                                 event BLOB NOT NULL, attempts INTEGER NOT NULL, reason TEXT NOT NULL,
                                 time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ids (name TEXT PRIMARY KEY, following INTEGER NOT NULL);
"""


def _wall(due: float) -> float:
    """Monotonic deadlines mean nothing to the next process: store wall-clock time."""
    return time.time() + (due - time.monotonic()) if due else 0.0


class SqliteJournal:
    def __init__(self, path: str):
        self.path = path
        if path != ':memory:':
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute('PRAGMA journal_mode=WAL')
        self.db.execute('PRAGMA synchronous=NORMAL')
        self.db.executescript(SCHEMA)
        self._open = False
        self._durable = False  # this transaction must survive the machine, not only the process

    def _begin(self) -> sqlite3.Connection:
        if not self._open:
            self.db.execute('BEGIN')
            self._open = True
        return self.db

    def commit(self) -> None:
        if self._open:
            self.db.execute('COMMIT')
            self._open = False
            if self._durable:
                self._durable = False
                self._sync()

    def _sync(self) -> None:
        """On disk, not only in the OS cache: what synchronous=FULL would do for every
        commit, for the ones that need it (a block of ids handed out twice after a power
        cut would break their promise; an event sent twice is only at-least-once)."""
        if self.path == ':memory:':
            return
        try:
            fd = os.open(self.path + '-wal', os.O_RDONLY)
        except FileNotFoundError:  # checkpointed away: the database file has it
            fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def queue_declared(self, name: str, patterns: list[str]) -> None:
        self._begin().execute('INSERT OR REPLACE INTO queues VALUES (?, ?)', (name, serial.dumps(patterns)))

    def queue_deleted(self, name: str) -> None:
        db = self._begin()
        db.execute('DELETE FROM queues WHERE name = ?', (name,))
        db.execute('DELETE FROM events WHERE queue = ?', (name,))

    def stored(self, queue: str, entry: Entry) -> None:
        self._begin().execute('INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?)',
                              (queue, entry.tag, serial.dumps(entry.event), entry.attempt, _wall(entry.due)))

    def removed(self, queue: str, tag: int) -> None:
        self._begin().execute('DELETE FROM events WHERE queue = ? AND tag = ?', (queue, tag))

    def dead(self, queue: str, entry: Entry, reason: str) -> None:
        db = self._begin()
        row = db.execute('INSERT INTO dead (queue, event, attempts, reason, time) VALUES (?, ?, ?, ?, ?)',
                         (queue, serial.dumps(entry.event), entry.attempt, reason, time.time())).lastrowid
        if row is not None and row % TRIM_EVERY == 0:
            db.execute('DELETE FROM dead WHERE id <= ?', (row - DEAD_KEPT,))

    def config_set(self, key: str, value: object) -> None:
        self._begin().execute('INSERT OR REPLACE INTO config VALUES (?, ?)', (key, serial.dumps(value)))

    def config_deleted(self, key: str) -> None:
        self._begin().execute('DELETE FROM config WHERE key = ?', (key,))

    def config_values(self) -> dict[str, object]:
        return {k: serial.loads(v) for k, v in self.db.execute('SELECT key, value FROM config')}

    def ids_reserved(self, name: str, following: int) -> None:
        self._begin().execute('INSERT OR REPLACE INTO ids VALUES (?, ?)', (name, following))
        self._durable = True

    def id_counters(self) -> dict[str, int]:
        return dict(self.db.execute('SELECT name, following FROM ids'))

    def restore(self, broker: Broker) -> int:
        """Load durable queues and their events into `broker`; returns the event count."""
        for name, patterns in self.db.execute('SELECT name, patterns FROM queues'):
            broker.declare(name, cast(list, serial.loads(patterns)), durable=True)
        count = 0
        now_wall, now = time.time(), time.monotonic()
        rows = self.db.execute('SELECT queue, tag, event, attempt, due FROM events ORDER BY tag')
        for queue, tag, event, attempt, due in rows:
            if queue in broker.queues:
                broker.restore(queue, Entry(tag, cast(dict, serial.loads(event)), attempt,
                                            now + (due - now_wall) if due else 0.0))
                count += 1
        return count

    def dead_letters(self, limit: int = 100) -> list[dict]:
        rows = self.db.execute('SELECT queue, event, attempts, reason, time FROM dead ORDER BY id DESC LIMIT ?',
                               (limit,))
        return [{'queue': q, 'event': serial.loads(e), 'attempts': a, 'reason': r, 'time': t}
                for q, e, a, r, t in rows]

    def close(self) -> None:
        self.commit()
        self.db.close()
