"""The node timeline: the node's own events (started, exited and why, restarted, backing
off, failed, liveness, limits, edits applied or refused, rollout steps, reloads) kept as
structured entries in a bounded ring.

Every such event is already a line the Printer says (fannode.node.output); the timeline
is fed from there, so the lines and the timeline never disagree and no call site changes.
The dashboard (fannode.tui.dashboard) takes entries as they come; `fannode attach` asks
the control verb `node.timeline` with a cursor:

    request  {'since': int (the last id seen; 0: from the oldest kept), 'limit': int}
    reply    {'cursor': int (the newest id in the reply, or `since` when there is none),
              'entries': [{'id', 'time', 'block', 'kind', 'text'}], 'pid': the node's pid}

Ids grow by one per entry from 1 and never repeat in a node's life; entries older than
the ring (SIZE) are gone, which a client sees as a gap in the ids. Ids start again in
another node: the pid tells a client that the node it follows was replaced.
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from typing import Any, Callable

from fannode.core.text import short
from fannode.exceptions import UsageError

SIZE = 2000        # entries kept
MAX_REPLY = 500    # entries in one node.timeline reply

# The kind of an event, from what the node says (first match wins; 'event' otherwise).
KINDS = (
    ('stopping', re.compile(r'^stopping: ')),
    ('stopped', re.compile(r'^stopped$')),
    ('ready', re.compile(r'\bcluster (ready|up with failures)\b')),
    ('ready', re.compile(r' ready: \d+/\d+$')),
    ('rollout', re.compile(r'\b(rollout|rolling out|rolled out|rolling back|rolled back|\d+/\d+ replaced)\b')),
    ('liveness', re.compile(r'\bliveness\b')),
    ('limit', re.compile(r'\b(memory|cpu) limit\b')),
    ('failed', re.compile(r' failed: .*not restarted until')),
    ('backoff', re.compile(r'; restarting in [\d.]+s \(failure')),
    ('exited', re.compile(r'; not restarted \(restart: ')),
    ('restarted', re.compile(r'\b(restarting|restarted)\b')),
    ('reload', re.compile(r'\b(reloading|reloaded|reload failed)\b')),
    ('edit-refused', re.compile(r'(still running the previous topology|not applied; restart|'
                                r'applying node\.yml failed)')),
    ('edit-applied', re.compile(r'^\S+ changed: ')),
    ('scaled', re.compile(r' → \d+ processes\b')),
    ('started', re.compile(r'^\S+\.\d+ started \(pid \d+\)$')),
    ('stopped', re.compile(r'^\S+ stopped \(pid \d+\)$')),
    ('not-started', re.compile(r' not started: ')),
)
# The block an event is about: its first word, "name", "name.3" or "name:".
WHO = re.compile(r'^([A-Za-z0-9_][A-Za-z0-9_.-]*?)(?:\.\d+)?(?::| |$)')
NOT_BLOCKS = {'cluster', 'stopping', 'stopped', 'applying', 'metrics', 'control', 'cannot', 'node'}


def classify(text: str) -> tuple[str, str]:
    """(kind, block) of one event line (plain text, no markup)."""
    kind = next((k for k, pattern in KINDS if pattern.search(text)), 'event')
    match = WHO.match(text)
    block = match.group(1) if match else ''
    if block in NOT_BLOCKS or block.endswith(('.yml', '.yaml')) or block == 'Procfile':
        block = ''
    return kind, block


class Timeline:
    """Written by the node's thread, read by the control socket (same thread) and the
    dashboard (another thread): a lock around the ring, held for microseconds."""

    def __init__(self, size: int = SIZE, clock: Callable[[], float] = time.time):
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.last_id = 0
        self.clock = clock
        self.lock = threading.Lock()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def record(self, text: str, kind: str | None = None, block: str | None = None) -> dict[str, Any]:
        guessed_kind, guessed_block = classify(text)
        with self.lock:
            self.last_id += 1
            entry = {'id': self.last_id, 'time': self.clock(), 'block': guessed_block if block is None else block,
                     'kind': kind or guessed_kind, 'text': text}
            self.entries.append(entry)
        for listener in self.listeners:
            listener(entry)
        return entry

    def since(self, cursor: int = 0, limit: int = MAX_REPLY) -> dict[str, Any]:
        """The entries after `cursor`, oldest first, at most `limit` of them."""
        with self.lock:
            if cursor >= self.last_id:
                return {'cursor': self.last_id if cursor > self.last_id else cursor, 'entries': []}
            newer = self.last_id - cursor  # the newest `newer` entries are after the cursor
            kept = list(self.entries)[-newer:] if newer < len(self.entries) else list(self.entries)
        entries = kept[:limit]
        return {'cursor': entries[-1]['id'] if entries else cursor, 'entries': [dict(e) for e in entries]}


def verb(timeline: Timeline, body: Any) -> dict[str, Any]:
    """The control verb node.timeline: {'since', 'limit'} → {'cursor', 'entries', 'pid'}."""
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise UsageError('the body of node.timeline must be a mapping, got %s' % short(body))
    since, limit = body.get('since', 0), body.get('limit', MAX_REPLY)
    for key, value in (('since', since), ('limit', limit)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UsageError("'%s' must be a whole number >= 0, got %s" % (key, short(value)))
    return dict(timeline.since(since, min(limit, MAX_REPLY)), pid=os.getpid())
