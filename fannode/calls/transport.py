"""The 'rpc' transport: a container's interfaces served over fannode RPC on ZeroMQ, and
the client its proxies call other services through. Config section `rpc:` — `ip`
(127.0.0.1; 0.0.0.0 to serve other hosts), `port` (0: any free one), `pool_size`
(requests run at once, 1000), `timeout` (of calls made through proxies, 3 s),
`tracebacks` (whether ERROR replies carry the traceback; `$FANNODE_TRACEBACKS` wins;
by default only when `ip` is a loopback address). The top-level `breakers:` section
configures the client's circuit breakers (fannode.calls.breaker). Callers in this same
process reach the interfaces through a door beside the socket (fannode.calls.local)."""
from __future__ import annotations

import time
from typing import Any, Callable

from fannode.core import wire
from fannode.core.addresses import announced
from fannode.core.transport import Host, Transport
from fannode.discovery import Registry
from fannode.calls.breaker import BreakerConfig
from fannode.calls.client import RpcClient
from fannode.calls.local import LocalDoor
from fannode.zmqrpc.server import RpcServer

KEYS = ('ip', 'port', 'pool_size', 'timeout', 'tracebacks')


class RpcTransport(Transport):
    name = 'rpc'
    config_key = 'rpc'

    def __init__(self, host: Host):
        super().__init__(host)
        config = host.config.section('rpc')
        config.check_keys(KEYS)
        self.registry: Registry = host.registry
        self.ip = host.ip or config.require('ip', str, '127.0.0.1')
        self.port = host.port if host.port is not None else config.require('port', int, 0)
        self.timeout = config.require('timeout', (int, float), 3.0)
        self.breakers = BreakerConfig.from_config(host.config)  # checked now: a bad key stops the start
        self.server = RpcServer(self._resolve, pool_size=config.require('pool_size', int, 1000),
                                on_done=host.metrics.record, expected=host.is_expected, quiet=host.is_builtin,
                                tracebacks=config.require('tracebacks', bool, None))
        self.door = LocalDoor(host, self.server)
        self._client: RpcClient | None = None

    def client(self) -> RpcClient:
        if self._client is None:
            self._client = RpcClient(self.registry, timeout=self.timeout, breakers=self.breakers, local=True)
        return self._client

    def start(self) -> dict[str, Any]:
        endpoint = announced(self.server.bind(self.ip, self.port), self.ip, self.registry.url)
        self.server.endpoint = endpoint
        self.server.start()
        self.door.open(endpoint)
        return {'endpoint': endpoint}

    def stop(self, timeout: float) -> bool:
        self.door.shut()
        until = time.monotonic() + timeout
        drained = self.server.drain(timeout)
        return self.door.wait(max(0.0, until - time.monotonic())) and drained

    def in_flight(self) -> int:
        return self.server.in_flight() + self.door.running

    def close(self) -> None:
        self.door.shut()
        self.door.kill()
        self.server.close()
        if self._client is not None:
            self._client.close()

    def _resolve(self, peer: bytes, msg: wire.Message) -> Callable[[], Any]:
        return self.host.dispatch(msg.subject, msg.body)
