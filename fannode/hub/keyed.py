"""Sharded queues: every event goes to the consumer that owns its key (rendezvous hashing
over the queue's consumers by the member each names, the instance id: fannode.core.shards),
one event of a key at a time, in the order they became ready.

An event of a key is handed out only when every earlier event of that key is done (acked
or dead-lettered): one being retried holds the later ones back, and one a dead consumer
held goes to the key's new owner before them. Events of other keys pass it. A delayed
event takes its place in its key's order when it comes due, not when it was published.

A sharded queue keeps its ready events per key, and per consumer the keys whose next
event it may take now, so handing out costs the same however many events wait.
"""
from __future__ import annotations

import bisect
import collections
import json
from typing import Any, Callable, Iterator, Protocol

from fannode.core.shards import key_text, owner
from fannode.exceptions import UsageError


class Entry(Protocol):  # the broker's, as this module uses them (the broker imports this one)
    tag: int
    event: dict
    key: str


class Consumer(Protocol):
    id: str
    member: str
    prefetch: int
    unacked: dict


def key_of(event: dict, field: str) -> str:
    body = event.get('body')
    value = body.get(field) if isinstance(body, dict) else None
    try:
        return key_text(value)
    except UsageError:  # a list or a map: still one key, by its JSON
        return json.dumps(value, sort_keys=True, default=repr)


class Keys:
    """The ready events of one sharded queue (its `ready`: append, appendleft, len and
    iteration, as the broker uses a deque), and per key the tags of its events not done
    yet — ready, delayed for a retry, or in flight — oldest first."""

    def __init__(self, field: str, consumers: list):
        self.field = field
        self.consumers = consumers  # the queue's own list: it changes in place
        self.pending: dict[str, collections.deque[int]] = {}
        self.waiting: dict[str, collections.deque[Any]] = {}  # key → its ready entries, by tag
        self.turns: dict[str, collections.deque[str]] = {}  # consumer id → keys it may take the next of
        self.queued: set[str] = set()  # keys in some turn
        self.size = 0

    # -- the deque the broker sees ------------------------------------------------

    def append(self, entry: Any) -> None:
        if not entry.key:  # ready for the first time: its place in its key's order starts now
            entry.key = key_of(entry.event, self.field)
            self.pending.setdefault(entry.key, collections.deque()).append(entry.tag)
        waiting = self.waiting.setdefault(entry.key, collections.deque())
        if not waiting or entry.tag > waiting[-1].tag:
            waiting.append(entry)
        elif entry.tag < waiting[0].tag:  # a retried or returned event: before the later ones
            waiting.appendleft(entry)
        else:
            waiting.insert(bisect.bisect([e.tag for e in waiting], entry.tag), entry)
        self.size += 1
        self._offer(entry.key)

    appendleft = append  # an entry's place is its tag's, however it comes back

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Any]:
        return (e for waiting in self.waiting.values() for e in waiting)

    # -- keys ---------------------------------------------------------------------

    def add_pending(self, entries: list[Any]) -> None:
        """Entries the queue holds out of `ready` (in flight, delayed) when it becomes sharded."""
        for entry in sorted(entries, key=lambda e: e.tag):
            entry.key = key_of(entry.event, self.field)
            self.pending.setdefault(entry.key, collections.deque()).append(entry.tag)

    def done(self, entry: Any) -> None:
        """Acked or dead: the next event of its key may go."""
        tags = self.pending.get(entry.key)
        if not tags:
            return
        if tags[0] == entry.tag:
            tags.popleft()
        elif entry.tag in tags:
            tags.remove(entry.tag)
        if not tags:
            del self.pending[entry.key]
        else:
            self._offer(entry.key)

    def reassign(self) -> None:
        """The consumers changed: every key goes to its owner among them now."""
        self.turns.clear()
        self.queued.clear()
        for key in list(self.waiting):
            self._offer(key)

    def _owner(self, key: str) -> Consumer | None:
        return owner(key, ((c.member, c) for c in self.consumers))

    def _offer(self, key: str) -> None:
        """Put `key` in its owner's turn when its next event may go now."""
        waiting = self.waiting.get(key)
        if key in self.queued or not waiting or waiting[0].tag != self.pending[key][0]:
            return
        consumer = self._owner(key)
        if consumer is not None:
            self.turns.setdefault(consumer.id, collections.deque()).append(key)
            self.queued.add(key)

    def pump(self, deliver: Callable[[Any, Any], None]) -> None:
        """Hand each consumer the next events of its keys while its prefetch window has room."""
        for consumer in self.consumers:
            turn = self.turns.get(consumer.id)
            while turn and len(consumer.unacked) < consumer.prefetch:
                key = turn.popleft()
                self.queued.discard(key)
                waiting = self.waiting.get(key)
                if not waiting or waiting[0].tag != self.pending[key][0]:
                    continue  # taken or held meanwhile; offered again when it may go
                entry = waiting.popleft()
                if not waiting:
                    del self.waiting[key]
                self.size -= 1
                deliver(consumer, entry)
