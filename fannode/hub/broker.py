"""The hub's event broker: topic-routed queues, consumers with bounded prefetch, acks,
retries with delay, dead letters, and redelivery of what a dead consumer held.

It is plain state driven by method calls; `deliver(consumer, queue, tag, event)` is
called to hand an event to a consumer, and `journal` (optional) records what must
survive a restart: durable queues and the events waiting in them.

The backlog (events ready, unacked or delayed, each queue's copy counted) is a budget in
bytes. Over it, publishes are refused and emitters keep their events until it drains:
dropping queued events would lose them silently.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import logging
import time
from typing import Any, Callable, Protocol

from fannode.core.events import matches
from fannode.core.limits import MIB, setting
from fannode.core.text import short
from fannode.exceptions import BadArguments, Unavailable
from fannode.hub.budget import Budget, footprint
from fannode.hub.keyed import Keys

log = logging.getLogger(__name__)

CONSUMER_TTL = 2.0      # a consumer that stops heartbeating this long is dead
DEFAULT_PREFETCH = 100  # events in flight per consumer: bounds memory on both sides
BUDGET = setting('FANNODE_HUB_EVENT_BUDGET', 128 * MIB, MIB)       # the backlog, in bytes
MAX_QUEUES = setting('FANNODE_HUB_MAX_QUEUES', 10_000, 1)          # every publish looks at each
MAX_CONSUMERS = setting('FANNODE_HUB_MAX_CONSUMERS', 10_000, 1)
# A connection's consumers times their prefetch must fit the hub socket's send queue
# (Hub sets it to 1,000,000 messages): a delivery it dropped would stay unacked for ever.
MAX_PEER_CONSUMERS = setting('FANNODE_HUB_MAX_PEER_CONSUMERS', 100, 1)
MAX_PREFETCH = setting('FANNODE_HUB_MAX_PREFETCH', 10_000, 1)
MAX_PATTERNS = setting('FANNODE_HUB_MAX_PATTERNS', 100, 1)  # of one queue: every publish matches each
ENTRY_COST = 150        # bytes of an entry and its place in a queue, besides the event

Deliver = Callable[['Consumer', str, int, dict], None]


class Journal(Protocol):
    def queue_declared(self, name: str, patterns: list[str]) -> None: ...
    def queue_deleted(self, name: str) -> None: ...
    def stored(self, queue: str, entry: 'Entry') -> None: ...
    def removed(self, queue: str, tag: int) -> None: ...
    def dead(self, queue: str, entry: 'Entry', reason: str) -> None: ...


class Entry:
    __slots__ = ('tag', 'event', 'attempt', 'due', 'size', 'key')

    def __init__(self, tag: int, event: dict, attempt: int = 1, due: float = 0.0, size: int = 0):
        self.key = ''  # its shard key, in a sharded queue
        self.tag = tag
        self.event = event
        self.attempt = attempt
        self.due = due
        self.size = size or ENTRY_COST + footprint(event)


class Consumer:
    __slots__ = ('id', 'peer', 'queue', 'prefetch', 'unacked', 'expires', 'member')

    def __init__(self, id: str, peer: Any, queue: str, prefetch: int, member: str | None = None):
        self.id = id
        self.member = member or id  # who it is for a sharded queue's keys: its instance
        self.peer = peer
        self.queue = queue
        self.prefetch = prefetch
        self.unacked: dict[int, Entry] = {}
        self.expires = time.monotonic() + CONSUMER_TTL


class Queue:
    def __init__(self, name: str, patterns: list[str], durable: bool, owner: str | None):
        self.name = name
        self.patterns = list(patterns)
        self.durable = durable
        self.owner = owner  # the consumer an exclusive queue dies with
        self.keys: Keys | None = None  # a sharded queue's (fannode.hub.keyed): then its ready too
        self.warned = False  # of a declare without its shard
        self.ready: collections.deque[Entry] | Keys = collections.deque()  # Keys when sharded
        self.consumers: list[Consumer] = []
        self.delayed = 0  # its entries waiting in the broker's heap
        self.bytes = 0    # of all its entries: ready, unacked, delayed
        self.declared = time.monotonic()
        self._turn = 0

    def wants(self, event_type: str) -> bool:
        return any(matches(p, event_type) for p in self.patterns)

    def next_consumer(self) -> Consumer | None:
        """Round-robin over consumers with room in their prefetch window."""
        n = len(self.consumers)
        for i in range(n):
            c = self.consumers[(self._turn + i) % n]
            if len(c.unacked) < c.prefetch:
                self._turn = (self._turn + i + 1) % n
                return c
        return None


class Broker:
    def __init__(self, deliver: Deliver, journal: Journal | None = None):
        self.deliver = deliver
        self.journal = journal
        self.queues: dict[str, Queue] = {}
        self.consumers: dict[str, Consumer] = {}
        self.delayed: list[tuple[float, int, Queue, Entry]] = []
        self.tags = itertools.count(1)
        self.dropped = 0  # events no queue wanted, as in AMQP
        self.budget = Budget('the event backlog', BUDGET, 'FANNODE_HUB_EVENT_BUDGET')
        self._seq = itertools.count()  # orders delayed entries due at the same time

    # -- queues and consumers ----------------------------------------------------

    def declare(self, name: str, patterns: list[str], durable: bool = True, owner: str | None = None,
                shard: str | None = None) -> Queue:
        """A queue bound to `patterns`; with `shard` (a body field), each event goes to the
        consumer owning its key, one at a time per key (fannode.hub.keyed)."""
        queue = self.queues.get(name)
        changed = queue is None
        if queue is None:
            if len(self.queues) >= MAX_QUEUES:
                raise Unavailable('hub.declare: the hub has %d queues, the most it keeps ($FANNODE_HUB_MAX_QUEUES)'
                                  % len(self.queues))
            queue = self.queues[name] = Queue(name, patterns, durable, owner)
        elif sorted(queue.patterns) != sorted(patterns):
            queue.patterns = list(patterns)  # the handler's patterns changed in a new release
            changed = True
        if shard and shard != (queue.keys.field if queue.keys else None):
            self._shard(queue, shard)
        elif shard is None and queue.keys is not None and not queue.warned:
            queue.warned = True  # an older release declaring it: sharded it stays
            log.warning('queue %s is sharded by %s; a consumer declared it without (an older release?): '
                        'it stays sharded until it is deleted', name, queue.keys.field)
        if changed and durable and self.journal is not None:
            self.journal.queue_declared(name, queue.patterns)
        return queue

    def _shard(self, queue: Queue, field: str) -> None:
        keys = Keys(field, queue.consumers)
        ready = list(queue.ready)
        held = {id(e) for e in ready}
        keys.add_pending([e for e in self._entries(queue) if id(e) not in held])
        for entry in sorted(ready, key=lambda e: e.tag):
            entry.key = ''
            keys.append(entry)
        queue.ready = queue.keys = keys

    def consume(self, consumer_id: str, peer: Any, queue_name: str, prefetch: int = DEFAULT_PREFETCH,
                member: str | None = None) -> None:
        queue = self.queues.get(queue_name)
        if queue is None:
            raise BadArguments("hub.consume: no queue '%s' (declare it first)" % queue_name)
        consumer = self.consumers.get(consumer_id)
        if consumer is not None and consumer.queue != queue_name:
            raise BadArguments("hub.consume: consumer '%s' already consumes queue '%s'" % (consumer_id, consumer.queue))
        if consumer is None:
            if len(self.consumers) >= MAX_CONSUMERS:
                raise Unavailable('hub.consume: the hub has %d consumers, the most it keeps '
                                  '($FANNODE_HUB_MAX_CONSUMERS)' % len(self.consumers))
            if peer is not None and sum(1 for c in self.consumers.values() if c.peer == peer) >= MAX_PEER_CONSUMERS:
                raise Unavailable('hub.consume: this connection has %d consumers, the most one may have '
                                  '($FANNODE_HUB_MAX_PEER_CONSUMERS)' % MAX_PEER_CONSUMERS)
            consumer = self.consumers[consumer_id] = Consumer(consumer_id, peer, queue_name, max(1, prefetch), member)
            queue.consumers.append(consumer)
            if queue.keys is not None:
                queue.keys.reassign()  # a new member takes its share of the keys
        consumer.peer = peer
        self.pump(queue)

    def alive(self, consumer_ids: list[str], peer: Any) -> list[str]:
        """Renew leases; returns the ids this broker does not know (to consume again)."""
        until = time.monotonic() + CONSUMER_TTL
        unknown = []
        for cid in consumer_ids:
            consumer = self.consumers.get(cid)
            if consumer is None:
                unknown.append(cid)
            else:
                consumer.expires = until
                consumer.peer = peer
        return unknown

    def cancel(self, consumer_id: str) -> None:
        """Remove a consumer; what it held goes back to the front of its queue."""
        consumer = self.consumers.pop(consumer_id, None)
        if consumer is None:
            return
        queue = self.queues.get(consumer.queue)
        if queue is None:
            return
        queue.consumers.remove(consumer)
        if queue.keys is not None:
            queue.keys.reassign()  # its keys go to the next best of the others
        for entry in sorted(consumer.unacked.values(), key=lambda e: e.tag, reverse=True):
            queue.ready.appendleft(entry)
        if queue.owner == consumer_id:
            self.delete(queue.name)
        else:
            self.pump(queue)

    def delete(self, name: str) -> None:
        queue = self.queues.pop(name, None)
        if queue is None:
            return
        for consumer in queue.consumers:
            self.consumers.pop(consumer.id, None)
        self.budget.give(queue.bytes)  # its delayed entries are skipped when due
        queue.bytes = 0
        if queue.durable and self.journal is not None:
            self.journal.queue_deleted(name)

    def expire(self) -> list[Consumer]:
        now = time.monotonic()
        dead = [c for c in self.consumers.values() if c.expires < now]
        for consumer in dead:
            log.info('consumer %s of %s is gone; %d unacked event(s) go back to the queue',
                     consumer.id[:8], consumer.queue, len(consumer.unacked))
            try:
                self.cancel(consumer.id)
            except Exception:  # one that cannot be put back must not keep the others
                log.exception('could not cancel consumer %s', consumer.id[:8])
                self.consumers.pop(consumer.id, None)
        # A queue declared for a consumer that never came (its client died in between)
        # would otherwise collect events for ever.
        for queue in [q for q in self.queues.values() if q.owner is not None and not q.consumers
                      and now - q.declared > CONSUMER_TTL]:
            log.info('queue %s lost its owner %s before it consumed; deleted', queue.name, str(queue.owner)[:8])
            self.delete(queue.name)
        self.budget.report(now)  # delayed events come due in release_due, the hub's 10 ms tick
        return dead

    # -- events ------------------------------------------------------------------

    def check_room(self, verb: str = 'hub.publish') -> None:
        """Refuse new events while the backlog is over its budget (a batch may pass it once)."""
        if self.budget.over():
            self.budget.refused += 1
            biggest = max(self.queues.values(), key=lambda q: q.bytes, default=None)
            raise Unavailable('%s: %s%s; the emitter keeps its events and sends them again' % (
                verb, self.budget.full(), '' if biggest is None else ', most of it in queue %s (%d ready)' % (
                    biggest.name, len(biggest.ready))))

    def publish(self, event: dict, delay: float = 0.0) -> int:
        """Route one event to every queue that wants it; returns how many took it."""
        taken = 0
        due = time.monotonic() + delay if delay > 0 else 0.0
        size = ENTRY_COST + footprint(event)  # once, whatever the number of queues
        for queue in self.queues.values():
            if queue.wants(event['type']):
                entry = Entry(next(self.tags), event, 1, due, size)
                if queue.durable and self.journal is not None:
                    self.journal.stored(queue.name, entry)
                self._account(queue, entry)
                self._enqueue(queue, entry)
                taken += 1
        if not taken:
            self.dropped += 1
        return taken

    def ack(self, consumer_id: str, tags: list[int]) -> None:
        consumer = self.consumers.get(consumer_id)
        if consumer is None:
            return  # it was declared dead and its events went back: they will come again
        queue = self.queues[consumer.queue]
        for tag in tags:
            entry = consumer.unacked.pop(tag, None)
            if entry is None:
                continue
            self._done(queue, entry)
            if self.journal is not None and queue.durable:
                self.journal.removed(consumer.queue, tag)
        self.pump(queue)

    def retry(self, consumer_id: str, tag: int, delay: float) -> None:
        """The handler failed; deliver the event again after `delay` seconds."""
        consumer = self.consumers.get(consumer_id)
        entry = consumer.unacked.pop(tag, None) if consumer else None
        if consumer is None or entry is None:
            return
        entry.attempt += 1
        entry.due = time.monotonic() + delay
        if self.journal is not None and self._durable(consumer.queue):
            self.journal.stored(consumer.queue, entry)
        self._enqueue(self.queues[consumer.queue], entry)
        self.pump(self.queues[consumer.queue])

    def reject(self, consumer_id: str, tag: int, reason: str) -> None:
        """The handler failed for good: keep the event aside as a dead letter."""
        consumer = self.consumers.get(consumer_id)
        entry = consumer.unacked.pop(tag, None) if consumer else None
        if consumer is None or entry is None:
            return
        self._done(self.queues[consumer.queue], entry)  # first: nothing below may leak it
        headers = entry.event.get('headers')  # whatever it is: this event is being refused
        log.error('dead-lettered event %s (%s) from queue %s after %d attempt(s): %s',
                  short(headers.get('id', '?'), 80, False) if isinstance(headers, dict) else '?',
                  short(entry.event.get('type'), 80, False), consumer.queue, entry.attempt,
                  short(reason, 400, False))
        if self.journal is not None:
            self.journal.dead(consumer.queue, entry, reason)
            if self._durable(consumer.queue):
                self.journal.removed(consumer.queue, tag)
        self.pump(self.queues[consumer.queue])

    def restore(self, queue_name: str, entry: Entry) -> None:
        """Put back an event read from the journal at start."""
        self.tags = itertools.count(max(entry.tag + 1, next(self.tags)))
        queue = self.queues[queue_name]
        self._account(queue, entry)  # even over the budget: it was taken
        self._enqueue(queue, entry)

    def release_due(self, now: float) -> None:
        touched = {}
        while self.delayed and self.delayed[0][0] <= now:
            _, _, queue, entry = heapq.heappop(self.delayed)
            queue.delayed -= 1
            if self.queues.get(queue.name) is queue:  # else deleted meanwhile: already given back
                queue.ready.append(entry)
                touched[queue.name] = queue
        for queue in touched.values():
            self.pump(queue)

    def next_due(self) -> float | None:
        return self.delayed[0][0] if self.delayed else None

    def pump(self, queue: Queue) -> None:
        """Hand ready events to consumers while their prefetch windows have room."""
        if queue.keys is not None:
            queue.keys.pump(lambda consumer, entry: self._hand(queue, consumer, entry))
            return
        assert isinstance(queue.ready, collections.deque)
        while queue.ready:
            consumer = queue.next_consumer()
            if consumer is None:
                return
            self._hand(queue, consumer, queue.ready.popleft())

    def _hand(self, queue: Queue, consumer: Consumer, entry: Entry) -> None:
        consumer.unacked[entry.tag] = entry
        self.deliver(consumer, queue.name, entry.tag, dict(entry.event, attempt=entry.attempt))

    def stats(self) -> dict[str, Any]:
        return {name: {'patterns': q.patterns, 'durable': q.durable, 'ready': len(q.ready),
                       'unacked': sum(len(c.unacked) for c in q.consumers), 'delayed': q.delayed,
                       'consumers': len(q.consumers), 'bytes': q.bytes}
                for name, q in sorted(self.queues.items())}

    def _done(self, queue: Queue, entry: Entry) -> None:
        """Acked or dead: it leaves the backlog, and the next event of its key may go."""
        self._account(queue, entry, -1)
        if queue.keys is not None:
            queue.keys.done(entry)

    def _entries(self, queue: Queue) -> list[Entry]:
        """Every entry `queue` holds: ready, in flight, delayed."""
        return [*queue.ready, *(e for c in queue.consumers for e in c.unacked.values()),
                *(e for _, _, q, e in self.delayed if q is queue)]

    def _account(self, queue: Queue, entry: Entry, sign: int = 1) -> None:
        queue.bytes += sign * entry.size
        self.budget.take(sign * entry.size)

    def _enqueue(self, queue: Queue, entry: Entry) -> None:
        if entry.due and entry.due > time.monotonic():
            heapq.heappush(self.delayed, (entry.due, next(self._seq), queue, entry))
            queue.delayed += 1
        else:
            queue.ready.append(entry)
            self.pump(queue)

    def _durable(self, name: str) -> bool:
        queue = self.queues.get(name)
        return queue is not None and queue.durable
