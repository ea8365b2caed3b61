"""`fannode hub`: the embedded registry, served over the RPC protocol on one port.

Requests use subjects `hub.<method>`; changes are pushed to watchers as NOTIFY
messages on the same connection. The events broker and shared config add their methods
beside these.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import gevent
import zmq.green as zmq

from fannode.exceptions import BadArguments, UnknownMethod, UsageError
from fannode.core.events import check_pattern
from fannode.hub.broker import DEFAULT_PREFETCH, Broker, Consumer
from fannode.hub.configstore import ConfigState
from fannode.hub.journal import SqliteJournal
from fannode.hub.logstore import Filter, LogState
from fannode.hub.registry import RegistryState
from fannode.core.keys import check_key
from fannode.core import wire
from fannode.zmqrpc.server import RpcServer

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, context: zmq.Context | None = None, instance_ttl: float | None = None,
                 journal: str | None = None):
        self.server = RpcServer(self.resolve, context)
        # Deliveries are pushed unasked; a ROUTER drops what exceeds the high-water mark,
        # so leave room for every consumer's full prefetch window.
        self.server.socket.setsockopt(zmq.SNDHWM, 1_000_000)
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
        self.logs = LogState(self.server.push)
        self._loops: list[gevent.Greenlet] = []

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

    def resolve(self, peer: bytes, msg: wire.Message) -> Callable[[], Any]:
        prefix, _, name = msg.subject.partition('.')
        handler = getattr(self, 'rpc_' + name, None) if prefix == 'hub' else None
        if handler is None:
            raise UnknownMethod("the hub has no method '%s'" % msg.subject)
        body = msg.body
        if not isinstance(body, dict):
            raise BadArguments('%s: the body must be a map' % msg.subject)
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

    def rpc_ping(self, peer: bytes) -> dict[str, str]:
        return {'epoch': self.registry.epoch}

    def rpc_register(self, peer: bytes, instance: dict[str, Any]) -> dict[str, str]:
        for key in ('id', 'endpoint', 'services'):
            if key not in instance:
                raise BadArguments('hub.register: instance has no %r' % key)
        instance.setdefault('started', time.time())
        self.registry.register(instance)
        log.info('registered %s %s at %s', ','.join(instance['services']), instance['id'][:8],
                 instance['endpoint'])
        return {'epoch': self.registry.epoch}

    def rpc_unregister(self, peer: bytes, id: str) -> bool:
        return self.registry.unregister(id)

    def rpc_heartbeat(self, peer: bytes, ids: list[str]) -> dict[str, Any]:
        return {'unknown': self.registry.heartbeat(ids), 'epoch': self.registry.epoch}

    def rpc_lookup(self, peer: bytes, service: str, watch: bool = False) -> dict[str, Any]:
        if watch:
            self.registry.watch(peer, [service])
        return self.registry.snapshot(service)

    def rpc_sync(self, peer: bytes, versions: dict[str, str]) -> dict[str, Any]:
        return self.registry.sync(peer, versions)

    def rpc_services(self, peer: bytes) -> dict[str, Any]:
        return self.registry.services()

    # -- events ------------------------------------------------------------------

    def rpc_declare(self, peer: bytes, queue: str, patterns: list[str], durable: bool = True,
                    owner: str | None = None) -> dict[str, Any]:
        for pattern in patterns:
            check_pattern(pattern)
        self.broker.declare(queue, patterns, durable, owner)
        return {'queue': queue}

    def rpc_consume(self, peer: bytes, consumer: str, queue: str, prefetch: int = DEFAULT_PREFETCH) -> bool:
        if queue not in self.broker.queues:
            raise BadArguments("hub.consume: no queue '%s' (declare it first)" % queue)
        self.broker.consume(consumer, peer, queue, prefetch)
        return True

    def rpc_cancel(self, peer: bytes, consumer: str) -> bool:
        self.broker.cancel(consumer)
        return True

    def rpc_alive(self, peer: bytes, consumers: list[str]) -> dict[str, Any]:
        return {'unknown': self.broker.alive(consumers, peer)}

    def rpc_publish(self, peer: bytes, events: list[dict[str, Any]]) -> dict[str, Any]:
        routed = [self.broker.publish(e['event'], e.get('delay') or 0.0) for e in events]
        return {'routed': routed}

    def rpc_ack(self, peer: bytes, consumer: str, tags: list[int]) -> bool:
        self.broker.ack(consumer, tags)
        return True

    def rpc_retry(self, peer: bytes, consumer: str, tag: int, delay: float) -> bool:
        self.broker.retry(consumer, tag, delay)
        return True

    def rpc_reject(self, peer: bytes, consumer: str, tag: int, reason: str) -> bool:
        self.broker.reject(consumer, tag, reason)
        return True

    def rpc_queues(self, peer: bytes) -> dict[str, Any]:
        return self.broker.stats()

    def rpc_dead_letters(self, peer: bytes, limit: int = 100) -> list[dict[str, Any]]:
        return self.journal.dead_letters(limit) if self.journal is not None else []

    # -- shared config -----------------------------------------------------------

    def rpc_config_get(self, peer: bytes, key: str) -> dict[str, Any]:
        return self.config.snapshot(_key(key))

    def rpc_config_set(self, peer: bytes, key: str, value: Any) -> dict[str, Any]:
        if value is None:
            raise BadArguments('hub.config_set: the value cannot be null (use hub.config_delete)')
        self.config.set(_key(key), value)
        return self.config.snapshot(key)

    def rpc_config_delete(self, peer: bytes, key: str) -> bool:
        return self.config.delete(_key(key))

    def rpc_config_keys(self, peer: bytes, prefix: str = '') -> list[str]:
        return self.config.keys(prefix)

    def rpc_config_watch(self, peer: bytes, versions: dict[str, str]) -> dict[str, Any]:
        for key in versions:
            _key(key)
        return self.config.watch(peer, versions)

    # -- logs ----------------------------------------------------------------------

    def rpc_logs(self, peer: bytes, records: list[dict[str, Any]], dropped: int = 0) -> None:
        self.logs.add(records, dropped)

    def rpc_log_follow(self, peer: bytes, services: list[str] | tuple[()] = (), level: str = '', trace: str = '',
                       spans: bool = False, history: int = 200) -> dict[str, Any]:
        return self.logs.follow(peer, Filter(services, level, trace, spans), history)

    def rpc_log_alive(self, peer: bytes) -> bool:
        return self.logs.alive(peer)

    def rpc_log_stop(self, peer: bytes) -> bool:
        return self.logs.stop(peer)

    def rpc_trace(self, peer: bytes, trace_id: str) -> list[dict[str, Any]]:
        return self.logs.trace(trace_id)

    def _deliver(self, consumer: Consumer, queue: str, tag: int, event: dict) -> None:
        self.server.push(consumer.peer, 'event', {'consumer': consumer.id, 'queue': queue, 'tag': tag,
                                                  'event': event})

    def _tick_events(self) -> None:
        while True:
            gevent.sleep(0.01)  # the resolution of delayed events and retries
            self.broker.expire()
            if self.journal is not None:
                self.journal.commit()

    def _expire(self) -> None:
        while True:
            gevent.sleep(0.2)
            for info in self.registry.expire():
                log.info('expired %s %s (no heartbeat)', ','.join(info['services']), info['id'][:8])
            self.config.expire()
            self.logs.expire()


def _key(key: Any) -> str:
    """Clients check keys first; a key that still gets here wrong is refused, never stored."""
    try:
        return check_key(key)
    except UsageError as e:
        raise BadArguments(str(e)) from None
