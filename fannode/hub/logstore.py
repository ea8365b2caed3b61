"""The log hub: records from every process, kept newest-last for whoever starts following
late, indexed by trace id for `fannode trace`, and pushed to followers (`tail`, `top`) as
they arrive.

Memory is a budget in bytes: each record is sized once when it arrives (`footprint`) and
the oldest records go first when the budget is full, whatever process wrote them.
A follower that stops reading is pushed at most `FOLLOWER_BACKLOG` bytes (encoded: what
the socket holds for it) between two of its keep-alives; what would go past that is
skipped, and it sees a gap in the numbers.
"""
from __future__ import annotations

import collections
import logging
import math
import time
from typing import Any, Callable

from fannode.core.limits import KIB, MIB, setting
from fannode.exceptions import Unavailable
from fannode.hub.budget import _DICT, _DICT_ITEM, _NUMBER, _STR, Budget, measure
from fannode.hub.logdisk import LogDisk

log = logging.getLogger(__name__)

BUDGET = setting('FANNODE_HUB_LOG_BUDGET', 32 * MIB, MIB)         # records kept, all processes
MAX_RECORD = setting('FANNODE_HUB_MAX_RECORD', 256 * KIB, KIB)     # a bigger record's msg is cut
FOLLOWER_BACKLOG = setting('FANNODE_HUB_FOLLOWER_BACKLOG', 32 * MIB, KIB)  # encoded, between keep-alives
MAX_FOLLOWERS = setting('FANNODE_HUB_MAX_FOLLOWERS', 16, 1)
MAX_REPLY = setting('FANNODE_HUB_MAX_LOG_REPLY', 16 * MIB, KIB)   # records in one answer
MAX_HISTORY = setting('FANNODE_HUB_MAX_HISTORY', 10_000, 0)  # records a follow may ask for
PER_TRACE = setting('FANNODE_HUB_PER_TRACE', 1000, 1)      # records a trace keeps for `trace`
TRACE_COST = 150      # bytes of the index entry a trace's first record brings
FOLLOWER_TTL = 15.0   # a follower not heard from for this long is forgotten
LEVELS = {'DEBUG': 10, 'INFO': 20, 'WARNING': 30, 'ERROR': 40, 'CRITICAL': 50}
# Fields the hub reads itself: `ts` a finite number (an int a float can hold), the rest text.
TEXT_FIELDS = ('kind', 'level', 'service', 'trace', 'span')
MAX_TS = 2 ** 1023

Push = Callable[[bytes, str, Any], None]
Kept = tuple[dict[str, Any], int, int]  # a record, its size in memory and encoded


def flat_measure(record: dict[Any, Any]) -> tuple[int, int] | None:
    """What `measure` answers for a map of text keys to text, numbers, None and booleans
    (every record a process ships), counted in one loop instead of its walk; None for
    anything else (a key that is not text, a nested value), which `measure` then walks."""
    try:
        keys = len(''.join(record))  # and every key is text, or TypeError
    except TypeError:
        return None
    strs = chars = numbers = 0
    for value in record.values():
        kind = type(value)
        if kind is str:
            strs += 1
            chars += len(value)
        elif kind is float or kind is int:
            numbers += 1
        elif value is not None and kind is not bool:
            return None
    n = len(record)
    size = _DICT + _DICT_ITEM * n + keys + _STR * strs + chars + _NUMBER * numbers
    wire = 3 + 2 * n + keys + 2 * strs + chars + 9 * numbers + (n - strs - numbers)
    return size, wire


def level_number(name: str) -> int:
    return LEVELS.get(str(name).upper(), 20)


class Filter:
    """What a follower wants: some services (any, when none), a least level, one trace."""

    def __init__(self, services: list[str] | tuple = (), level: str = '', trace: str = '',
                 spans: bool = False):
        self.services = {s.lower() for s in services}
        self.level = level_number(level) if level else 0
        self.trace = trace
        self.spans = spans

    def match(self, record: dict[str, Any]) -> bool:
        if record.get('kind') == 'span' and not self.spans and type(record.get('msg')) is not str:
            return False  # a span that carries a log line (an HTTP request's) is that line too
        if self.trace and not (record.get('trace') or '').startswith(self.trace):
            return False
        if self.level and level_number(record.get('level') or 'INFO') < self.level:
            return False
        if self.services:
            names = (record.get('service') or '').lower().split(',')
            return any(name in self.services for name in names)
        return True


class Follower:
    __slots__ = ('filter', 'sent', 'expires', 'backlog', 'skipped', 'lagging')

    def __init__(self, filter: Filter):
        self.filter = filter
        self.sent = 0  # messages pushed: numbered, so a follower sees any that went missing
        self.expires = time.monotonic() + FOLLOWER_TTL
        self.backlog = 0  # bytes (encoded) pushed since its last keep-alive
        self.skipped = 0  # messages not pushed: it was too far behind
        self.lagging = False


class LogState:
    def __init__(self, push: Push, disk: LogDisk | None = None):
        self.push = push
        self.disk = disk  # the ring on disk, when the hub has a journal
        self.kept: collections.deque[tuple[dict[str, Any], int]] = collections.deque()  # oldest first, with sizes
        self.traces: dict[str, list[dict[str, Any]]] = {}
        self.followers: dict[bytes, Follower] = {}
        self.budget = Budget('the log hub', BUDGET, 'FANNODE_HUB_LOG_BUDGET')
        self.received = 0
        if disk is not None:  # what the hub kept before it was stopped or killed: the newest that fit
            loaded, room = [], BUDGET
            for record in disk.newest():
                size = measure(record)[0]
                room -= size + (TRACE_COST if record.get('trace') else 0)
                if room < 0:
                    break
                loaded.append((record, size))
            for record, size in reversed(loaded):
                self._keep(record, size)

    def add(self, records: list[Any], dropped: int = 0) -> None:
        sized = [kept for kept in map(self._size, records) if kept is not None]
        if dropped and sized:
            note = dict(sized[0][0], kind='log', level='WARNING', logger='fannode.logs', trace='', span='',
                        msg='%d log record(s) dropped: this process wrote faster than it could send, '
                            'the hub was away, or they could not be encoded' % dropped)
            sized.insert(0, (note, *measure(note)))
        for record, size, _ in sized:
            self._keep(record, size)
        if self.disk is not None:
            self.disk.extend([record for record, _, _ in sized])
        while self.budget.over() and self.kept:
            self._forget_oldest()
        self.received += len(sized)
        for peer, follower in self.followers.items():
            matched = [kept for kept in sized if follower.filter.match(kept[0])]
            if matched:
                self._send(peer, follower, matched)

    def _size(self, record: Any) -> Kept | None:
        """The record with its sizes, or None when it is refused (not a map the hub can read)."""
        if type(record) is not dict:
            self.budget.refused += 1
            return None
        sizes = flat_measure(record)  # one pass: records are flat maps of plain values
        if sizes is None:
            if not all(type(k) is str for k in record):
                self.budget.refused += 1
                return None
            sizes = measure(record)  # a nested value: the full walk
        ts = record.get('ts')
        if ts is not None and not (type(ts) is float and math.isfinite(ts) or type(ts) is int and abs(ts) < MAX_TS):
            self.budget.refused += 1
            return None
        for name in TEXT_FIELDS:
            value = record.get(name)
            if value is not None and type(value) is not str:
                self.budget.refused += 1
                return None
        size, wire = sizes
        if size > MAX_RECORD and type(record.get('msg')) is str:
            cut = max(0, len(record['msg']) - (size - MAX_RECORD) - 100)
            record['msg'] = record['msg'][:cut] + '… [%d characters cut by the log hub]' % (len(record['msg']) - cut)
            size, wire = measure(record)
        if size > MAX_RECORD:
            self.budget.refused += 1
            return None
        return record, size, wire

    def _keep(self, record: dict[str, Any], size: int) -> None:
        trace_id = record.get('trace')
        if trace_id:
            kept = self.traces.get(trace_id)
            if kept is None:
                kept = self.traces[trace_id] = []
                size += TRACE_COST
            if len(kept) < PER_TRACE:
                kept.append(record)
        self.kept.append((record, size))
        self.budget.take(size)

    def _forget_oldest(self) -> None:
        record, size = self.kept.popleft()
        self.budget.give(size)
        self.budget.dropped += 1
        trace_id = record.get('trace')
        kept = self.traces.get(trace_id) if trace_id else None
        if kept and kept[0] is record:  # records leave a trace in the order they came
            del kept[0]
            if not kept:
                del self.traces[trace_id]  # type: ignore[arg-type]

    def _send(self, peer: bytes, follower: Follower, matched: list[Kept]) -> None:
        size = sum(wire for _, _, wire in matched)
        follower.sent += 1  # counted even when skipped: the follower sees the gap
        if follower.backlog + size > FOLLOWER_BACKLOG:
            follower.skipped += 1
            if not follower.lagging:
                log.warning('a log follower is %d bytes behind ($FANNODE_HUB_FOLLOWER_BACKLOG); '
                            'skipping its messages until it catches up', follower.backlog)
            follower.lagging = True
            return
        follower.backlog += size
        self.push(peer, 'logs', {'n': follower.sent, 'records': [r for r, _, _ in matched]})

    def follow(self, peer: bytes, filter: Filter, history: int) -> dict[str, Any]:
        """Start pushing `peer` what matches; answer the last `history` matching records."""
        if peer not in self.followers and len(self.followers) >= MAX_FOLLOWERS:
            raise Unavailable('hub.log_follow: the hub has %d followers already, the most it takes '
                              '($FANNODE_HUB_MAX_FOLLOWERS)' % len(self.followers))
        self.followers[peer] = Follower(filter)
        recent: list[dict[str, Any]] = []
        room = MAX_REPLY
        for record, size in reversed(self.kept):
            if len(recent) >= history or size > room:
                break
            if filter.match(record):
                recent.append(record)
                room -= size
        recent.sort(key=lambda r: r.get('ts') or 0)
        return {'records': recent, 'n': 0}

    def alive(self, peer: bytes) -> bool:
        """A follower's keep-alive; False when it was forgotten (it follows again). It has
        read what was pushed before its previous keep-alive's answer: start counting again."""
        follower = self.followers.get(peer)
        if follower is None:
            return False
        follower.expires = time.monotonic() + FOLLOWER_TTL
        follower.backlog = 0
        follower.lagging = False
        return True

    def stop(self, peer: bytes) -> bool:
        return self.followers.pop(peer, None) is not None

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The records of one trace, in time order; a prefix of its id will do when only
        one trace kept starts with it (people copy the 8 digits `tail` shows)."""
        kept = self.traces.get(trace_id)
        if kept is None and trace_id:
            found = [t for t in self.traces if t.startswith(trace_id)]
            kept = self.traces[found[0]] if len(found) == 1 else None
        records, room = [], MAX_REPLY
        for record in sorted(kept or (), key=lambda r: r.get('ts') or 0):
            room -= measure(record)[0]
            if room < 0:
                break
            records.append(record)
        return records

    def flush(self) -> None:
        """The records that came since the last flush, to disk (the hub's tick)."""
        if self.disk is not None:
            self.disk.flush()

    def close(self) -> None:
        if self.disk is not None:
            self.disk.close()

    def expire(self) -> None:
        now = time.monotonic()
        for peer in [p for p, f in self.followers.items() if f.expires < now]:
            log.info('forgot a log follower (silent for %gs)', FOLLOWER_TTL)
            del self.followers[peer]
        self.budget.report(now)

    def stats(self) -> dict[str, Any]:
        return dict(self.budget.stats(), records=len(self.kept), traces=len(self.traces),
                    followers=len(self.followers),
                    skipped=sum(f.skipped for f in self.followers.values()))
