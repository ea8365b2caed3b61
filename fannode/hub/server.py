"""The hub (fannode.hub.serve runs it as `fannode hub`): the embedded registry, served
over the RPC protocol on one port.

Requests use subjects `hub.<method>`; changes are pushed to watchers as NOTIFY
messages on the same connection. The events broker, shared config and the log hub add
their methods beside these. Every method declares its arguments (`@verb`, see schema.py):
a request that does not fit is refused before it runs. What a verb takes as free-form
(an event's body and headers, a log record's fields) reaches the stores unread, and is
read with the same caution wherever it is read (fannode.events.encoding, logs.records).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import gevent
import zmq.green as zmq

from fannode.exceptions import BadArguments, UnknownMethod
from fannode.core.events import MAX_DELAY, check_pattern, check_type
from fannode.core.keys import MAX_KEY, check_key
from fannode.core.limits import setting
from fannode.hub import schema
from fannode.hub.broker import DEFAULT_PREFETCH, MAX_PATTERNS, MAX_PREFETCH, Broker, Consumer
from fannode.hub.configstore import MAX_VALUE, ConfigState
from fannode.hub.idstore import MAX_BLOCK as MAX_ID_BLOCK, IdCounters
from fannode.hub.journal import SqliteJournal
from fannode.hub.logdisk import LogDisk, ring_path
from fannode.hub.logstore import LEVELS, MAX_HISTORY, Filter, LogState
from fannode.hub.registry import RegistryState
from fannode.hub.schema import (
    BOOL, NAME, Anything, Fields, ListOf, Map, MapOf, Maybe, Number, Str, check_body, verb,
)
from fannode.core import wire
from fannode.zmqrpc.server import RpcServer

log = logging.getLogger(__name__)

MAX_SERVICES = setting('FANNODE_HUB_MAX_SERVICES', 100, 1)     # services one instance offers
MAX_DEAD_LETTERS = setting('FANNODE_HUB_MAX_DEAD_LETTERS', 1000, 1)  # one hub.dead_letters answer
# Messages a connection may have waiting before the hub reads them: a sender faster than the
# hub waits (its socket fills; shippers keep records) instead of parking frames in the hub.
RCVHWM = setting('FANNODE_HUB_RCVHWM', 100, 1)

# What the verbs take, declared once (schema.py); the rest of the bounds live in the stores.
VERSION = Str(max=64, min=0)
KEY = Str(max=MAX_KEY, check=check_key)
TAG = Number(0, 2 ** 63 - 1, whole=True)
DELAY = Number(0, MAX_DELAY)
TRACE = Str(max=wire.MAX_TRACE_ID, min=0)
ANY = Anything()
INSTANCE = Fields({'id': NAME, 'endpoint': NAME, 'services': ListOf(NAME, max=MAX_SERVICES, min=1)},
                  {'pid': Number(0, 2 ** 32, whole=True), 'host': Str(min=0), 'version': Str(min=0),
                   'started': Number(0, 1e11), 'ready': BOOL, 'meta': MapOf(ANY)})
EVENT = Fields({'type': Str(check=check_type)}, {'body': Maybe(Map()), 'headers': Map()})
PUBLISHED = Fields({'event': EVENT}, {'delay': Maybe(DELAY)})


def _level(name: str) -> None:
    if name and name.upper() not in LEVELS:
        raise ValueError('expected one of %s (any case), got %r' % (', '.join(LEVELS), name))


LEVEL = Str(max=16, min=0, check=_level)
LOG_VERBS = ('ping', 'stats', 'logs', 'log_follow', 'log_alive', 'log_stop', 'trace')


class Hub:
    def __init__(self, context: zmq.Context | None = None, instance_ttl: float | None = None,
                 journal: str | None = None, logs_only: bool = False):
        self.logs_only = logs_only  # a log hub: it answers LOG_VERBS only
        self.server = RpcServer(self.resolve, context)
        # Deliveries are pushed unasked; a ROUTER drops what exceeds the high-water mark,
        # so leave room for every consumer's full prefetch window (broker.MAX_PEER_CONSUMERS).
        self.server.socket.setsockopt(zmq.SNDHWM, 1_000_000)
        self.server.socket.setsockopt(zmq.RCVHWM, RCVHWM)
        self.registry = RegistryState(self.server.push)
        if instance_ttl is not None:
            self.registry.instance_ttl = instance_ttl
        self.journal = SqliteJournal(journal) if journal else None
        self.broker = Broker(self._deliver, self.journal)
        if self.journal is not None:
            restored = self.journal.restore(self.broker)
            if restored:
                log.info('restored %d queued event(s) from %s', restored, journal)
        self.config = ConfigState(self.server.push, self.registry.epoch, self.journal)
        self.ids = IdCounters(self.journal)
        ring = ring_path(journal)  # the log ring on disk, beside the journal
        self.logs = LogState(self.server.push, LogDisk(ring) if ring else None)
        self._loops: list[gevent.Greenlet] = []
        self._failing: set[str] = set()  # loop steps whose failure was logged

    def bind(self, ip: str, port: int) -> str:
        return self.server.bind(ip, port)

    def start(self) -> None:
        self.server.start()
        self._loops = [gevent.spawn(self._expire), gevent.spawn(self._tick_events)]

    def stop(self) -> None:
        gevent.killall(self._loops, block=False)
        self.server.close()
        if self.journal is not None:
            self.journal.close()
        self.logs.close()

    def resolve(self, peer: bytes, msg: wire.Message) -> Callable[[], Any]:
        prefix, _, name = msg.subject.partition('.')
        handler = getattr(self, 'rpc_' + name, None) if prefix == 'hub' else None
        if handler is None or not hasattr(handler, 'args'):
            raise UnknownMethod("the hub has no method '%s'" % msg.subject[:200])
        if self.logs_only and name not in LOG_VERBS:
            raise UnknownMethod("this is a log-only hub: it has no method '%s'" % msg.subject)
        body = check_body(msg.subject, handler, msg.body)  # raises BadArguments: a NACK at once
        journal = self.journal
        if journal is None or name.startswith(('log', 'trace')):  # logs are not journaled
            return lambda: handler(peer, **body)

        def run() -> Any:
            try:
                return handler(peer, **body)
            finally:  # on disk before the caller hears back
                journal.commit()
        return run

    # Each rpc_* method is one hub call; `peer` is the caller's connection identity.

    @verb()
    def rpc_ping(self, peer: bytes) -> dict[str, str]:
        return {'epoch': self.registry.epoch}

    @verb()
    def rpc_stats(self, peer: bytes) -> dict[str, Any]:
        """What each store keeps against its budget, and what it dropped or refused."""
        return {'registry': dict(self.registry.budget.stats(), instances=len(self.registry.instances)),
                'events': dict(self.broker.budget.stats(), queues=len(self.broker.queues),
                               consumers=len(self.broker.consumers), unrouted=self.broker.dropped),
                'config': dict(self.config.budget.stats(), keys=len(self.config.values)),
                'logs': self.logs.stats()}

    @verb(instance=INSTANCE)
    def rpc_register(self, peer: bytes, instance: dict[str, Any]) -> dict[str, str]:
        instance.setdefault('started', time.time())
        self.registry.register(instance)
        log.info('registered %s %s at %s', ','.join(instance['services']), instance['id'][:8],
                 instance['endpoint'])
        return {'epoch': self.registry.epoch}

    @verb(id=NAME)
    def rpc_unregister(self, peer: bytes, id: str) -> bool:
        return self.registry.unregister(id)

    @verb(ids=ListOf(NAME))
    def rpc_heartbeat(self, peer: bytes, ids: list[str]) -> dict[str, Any]:
        return {'unknown': self.registry.heartbeat(ids), 'epoch': self.registry.epoch}

    @verb(service=NAME, watch=BOOL)
    def rpc_lookup(self, peer: bytes, service: str, watch: bool = False) -> dict[str, Any]:
        if watch:
            self.registry.watch(peer, [service])
        return self.registry.snapshot(service)

    @verb(versions=MapOf(VERSION))
    def rpc_sync(self, peer: bytes, versions: dict[str, str]) -> dict[str, Any]:
        return self.registry.sync(peer, versions)

    @verb()
    def rpc_services(self, peer: bytes) -> dict[str, Any]:
        return self.registry.services()

    # -- events ------------------------------------------------------------------

    @verb(queue=NAME, patterns=ListOf(Str(check=check_pattern), max=MAX_PATTERNS, min=1), durable=BOOL,
          owner=Maybe(NAME), shard=Maybe(NAME))
    def rpc_declare(self, peer: bytes, queue: str, patterns: list[str], durable: bool = True,
                    owner: str | None = None, shard: str | None = None) -> dict[str, Any]:
        """With `shard` (a body field), each event goes to the consumer owning its key."""
        self.broker.declare(queue, patterns, durable, owner, shard)
        return {'queue': queue}

    @verb(consumer=NAME, queue=NAME, prefetch=Number(1, MAX_PREFETCH, whole=True), member=Maybe(NAME))
    def rpc_consume(self, peer: bytes, consumer: str, queue: str, prefetch: int = DEFAULT_PREFETCH,
                    member: str | None = None) -> bool:
        """`member`: who the consumer is for a sharded queue's keys (its instance id)."""
        self.broker.consume(consumer, peer, queue, prefetch, member)
        return True

    @verb(consumer=NAME)
    def rpc_cancel(self, peer: bytes, consumer: str) -> bool:
        self.broker.cancel(consumer)
        return True

    @verb(consumers=ListOf(NAME))
    def rpc_alive(self, peer: bytes, consumers: list[str]) -> dict[str, Any]:
        return {'unknown': self.broker.alive(consumers, peer)}

    @verb(events=ListOf(PUBLISHED))
    def rpc_publish(self, peer: bytes, events: list[dict[str, Any]]) -> dict[str, Any]:
        self.broker.check_room()  # all of the batch or none of it: the emitter sends it again
        routed = [self.broker.publish(e['event'], e.get('delay') or 0.0) for e in events]
        return {'routed': routed}

    @verb(consumer=NAME, tags=ListOf(TAG))
    def rpc_ack(self, peer: bytes, consumer: str, tags: list[int]) -> bool:
        self.broker.ack(consumer, tags)
        return True

    @verb(consumer=NAME, tag=TAG, delay=DELAY)
    def rpc_retry(self, peer: bytes, consumer: str, tag: int, delay: float) -> bool:
        self.broker.retry(consumer, tag, delay)
        return True

    @verb(consumer=NAME, tag=TAG, reason=Str(max=schema.MAX_TEXT, min=0, clip=True))
    def rpc_reject(self, peer: bytes, consumer: str, tag: int, reason: str) -> bool:
        self.broker.reject(consumer, tag, reason)
        return True

    @verb()
    def rpc_queues(self, peer: bytes) -> dict[str, Any]:
        return self.broker.stats()

    @verb(limit=Number(0, MAX_DEAD_LETTERS, whole=True))
    def rpc_dead_letters(self, peer: bytes, limit: int = 100) -> list[dict[str, Any]]:
        return self.journal.dead_letters(limit) if self.journal is not None else []

    # -- shared config -----------------------------------------------------------

    @verb(key=KEY)
    def rpc_config_get(self, peer: bytes, key: str) -> dict[str, Any]:
        return self.config.snapshot(key)

    @verb(key=KEY, value=Anything(MAX_VALUE, '$FANNODE_HUB_MAX_CONFIG_VALUE'))
    def rpc_config_set(self, peer: bytes, key: str, value: Any) -> dict[str, Any]:
        if value is None:
            raise BadArguments('hub.config_set: the value cannot be null (use hub.config_delete)')
        self.config.set(key, value)
        return self.config.snapshot(key)

    @verb(key=KEY)
    def rpc_config_delete(self, peer: bytes, key: str) -> bool:
        return self.config.delete(key)

    @verb(name=KEY, count=Number(1, MAX_ID_BLOCK, whole=True))
    def rpc_ids(self, peer: bytes, name: str, count: int = 1) -> dict[str, int]:
        """A block of `count` unique ids of `name`: {'first': n, 'count': count}."""
        return {'first': self.ids.reserve(name, count), 'count': count}

    @verb(prefix=Str(max=MAX_KEY, min=0))
    def rpc_config_keys(self, peer: bytes, prefix: str = '') -> list[str]:
        return self.config.keys(prefix)

    @verb(versions=MapOf(VERSION, key=KEY))
    def rpc_config_watch(self, peer: bytes, versions: dict[str, str]) -> dict[str, Any]:
        return self.config.watch(peer, versions)

    # -- logs ----------------------------------------------------------------------

    @verb(records=ListOf(ANY), dropped=Number(0, 2 ** 53, whole=True))
    def rpc_logs(self, peer: bytes, records: list[Any], dropped: int = 0) -> None:
        self.logs.add(records, dropped)  # records the store cannot read are counted, not kept

    @verb(services=ListOf(NAME, max=MAX_SERVICES), level=LEVEL, trace=TRACE, spans=BOOL,
          history=Number(0, MAX_HISTORY, whole=True))
    def rpc_log_follow(self, peer: bytes, services: list[str] | tuple[()] = (), level: str = '', trace: str = '',
                       spans: bool = False, history: int = 200) -> dict[str, Any]:
        return self.logs.follow(peer, Filter(services, level, trace, spans), history)

    @verb()
    def rpc_log_alive(self, peer: bytes) -> bool:
        return self.logs.alive(peer)

    @verb()
    def rpc_log_stop(self, peer: bytes) -> bool:
        return self.logs.stop(peer)

    @verb(trace_id=TRACE)
    def rpc_trace(self, peer: bytes, trace_id: str) -> list[dict[str, Any]]:
        return self.logs.trace(trace_id)

    # -- in the background ---------------------------------------------------------

    def _deliver(self, consumer: Consumer, queue: str, tag: int, event: dict) -> None:
        self.server.push(consumer.peer, 'event', {'consumer': consumer.id, 'queue': queue, 'tag': tag,
                                                  'event': event})

    def _tick_events(self) -> None:
        while True:
            gevent.sleep(0.01)  # the resolution of delayed events and retries
            self._step('delayed events', lambda: self.broker.release_due(time.monotonic()))
            if self.journal is not None:
                self._step('the journal', self.journal.commit)
            self._step('the log ring', self.logs.flush)

    def _expire(self) -> None:
        while True:
            gevent.sleep(0.2)
            self._step('instances', self._expire_instances)
            self._step('consumers', self.broker.expire)
            self._step('config watches', self.config.expire)
            self._step('log followers', self.logs.expire)

    def _expire_instances(self) -> None:
        for info in self.registry.expire():
            log.info('expired %s %s (no heartbeat)', ','.join(info['services']), info['id'][:8])

    def _step(self, what: str, step: Callable[[], Any]) -> None:
        """One step of a loop: a failure is logged once (per step) and the loop goes on."""
        try:
            step()
        except Exception:
            if what not in self._failing:
                self._failing.add(what)
                log.exception('the hub failed on %s; going on (logged once)', what)
