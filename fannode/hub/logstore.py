"""The log hub: records from every process, kept in a ring per process for whoever
starts following late, indexed by trace id for `fannode trace`, and pushed to followers
(`tail`, `top`) as they arrive."""
from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable

RING = 1000          # records kept per process
SOURCES = 500        # processes kept; the one written to longest ago goes first
TRACES = 20_000      # traces kept for `fannode trace`, oldest first out
PER_TRACE = 1000     # records kept per trace
FOLLOWER_TTL = 15.0  # a follower not heard from for this long is forgotten
LEVELS = {'DEBUG': 10, 'INFO': 20, 'WARNING': 30, 'ERROR': 40, 'CRITICAL': 50}

Push = Callable[[bytes, str, Any], None]


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
        if record.get('kind') == 'span' and not self.spans:
            return False
        if self.trace and not str(record.get('trace', '')).startswith(self.trace):
            return False
        if self.level and level_number(record.get('level', 'INFO')) < self.level:
            return False
        if self.services:
            names = str(record.get('service', '')).lower().split(',')
            return any(name in self.services for name in names)
        return True


class Follower:
    __slots__ = ('filter', 'sent', 'expires')

    def __init__(self, filter: Filter):
        self.filter = filter
        self.sent = 0  # messages pushed: numbered, so a follower sees any that went missing
        self.expires = time.monotonic() + FOLLOWER_TTL


class LogState:
    def __init__(self, push: Push):
        self.push = push
        self.rings: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()
        self.traces: collections.OrderedDict[str, list] = collections.OrderedDict()
        self.followers: dict[bytes, Follower] = {}
        self.received = 0

    def add(self, records: list[dict[str, Any]], dropped: int = 0) -> None:
        if dropped and records:
            first = records[0]
            records = [dict(first, kind='log', level='WARNING', logger='fannode.logs', trace='', span='',
                            msg='%d log record(s) dropped: this process wrote faster than it '
                                'could send, or the hub was away' % dropped)] + records
        for record in records:
            self._keep(record)
        self.received += len(records)
        for peer, follower in self.followers.items():
            matched = [r for r in records if follower.filter.match(r)]
            if matched:
                follower.sent += 1
                self.push(peer, 'logs', {'n': follower.sent, 'records': matched})

    def _keep(self, record: dict[str, Any]) -> None:
        source = '%s/%s' % (record.get('host', ''), record.get('pid', ''))
        ring = self.rings.get(source)
        if ring is None:
            ring = self.rings[source] = collections.deque(maxlen=RING)
            if len(self.rings) > SOURCES:
                self.rings.popitem(last=False)
        else:
            self.rings.move_to_end(source)
        ring.append(record)
        trace_id = record.get('trace')
        if trace_id:
            kept = self.traces.get(trace_id)
            if kept is None:
                kept = self.traces[trace_id] = []
                if len(self.traces) > TRACES:
                    self.traces.popitem(last=False)
            if len(kept) < PER_TRACE:
                kept.append(record)

    def follow(self, peer: bytes, filter: Filter, history: int) -> dict[str, Any]:
        """Start pushing `peer` what matches; answer the last `history` matching records."""
        self.followers[peer] = Follower(filter)
        recent = [r for ring in self.rings.values() for r in ring if filter.match(r)] if history else []
        recent.sort(key=lambda r: r.get('ts', 0))
        return {'records': recent[-history:] if history else [], 'n': 0}

    def alive(self, peer: bytes) -> bool:
        """A follower's keep-alive; False when it was forgotten (it follows again)."""
        follower = self.followers.get(peer)
        if follower is None:
            return False
        follower.expires = time.monotonic() + FOLLOWER_TTL
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
        return sorted(kept or (), key=lambda r: r.get('ts', 0))

    def expire(self) -> None:
        now = time.monotonic()
        for peer in [p for p, f in self.followers.items() if f.expires < now]:
            logging.getLogger(__name__).info('forgot a log follower (silent for %gs)', FOLLOWER_TTL)
            del self.followers[peer]
