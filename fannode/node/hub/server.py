"""`fannode hub`: the embedded registry, served over the RPC protocol on one port.

Requests use subjects `hub.<method>`; changes are pushed to watchers as NOTIFY
messages on the same connection. The events broker adds its methods beside these.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import gevent
import zmq.green as zmq

from fannode.exceptions import BadArguments, UnknownMethod
from fannode.node.hub.registry import RegistryState
from fannode.zmqrpc import protocol
from fannode.zmqrpc.server import RpcServer

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, context: zmq.Context | None = None, instance_ttl: float | None = None):
        self.server = RpcServer(self.resolve, context)
        self.registry = RegistryState(self.server.push)
        if instance_ttl is not None:
            self.registry.instance_ttl = instance_ttl
        self._expirer: gevent.Greenlet | None = None

    def bind(self, ip: str, port: int) -> str:
        return self.server.bind(ip, port)

    def start(self) -> None:
        self.server.start()
        self._expirer = gevent.spawn(self._expire)

    def stop(self) -> None:
        if self._expirer is not None:
            self._expirer.kill(block=False)
        self.server.close()

    def resolve(self, peer: bytes, msg: protocol.Message) -> Callable[[], Any]:
        prefix, _, name = msg.subject.partition('.')
        handler = getattr(self, 'rpc_' + name, None) if prefix == 'hub' else None
        if handler is None:
            raise UnknownMethod("the hub has no method '%s'" % msg.subject)
        body = msg.body
        if not isinstance(body, dict):
            raise BadArguments('%s: the body must be a map' % msg.subject)
        return lambda: handler(peer, **body)

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

    def _expire(self) -> None:
        while True:
            gevent.sleep(0.2)
            for info in self.registry.expire():
                log.info('expired %s %s (no heartbeat)', ','.join(info['services']), info['id'][:8])
