"""`hub://host:port`: discovery through the embedded hub (`fannode hub`, `fannode up`)."""
from __future__ import annotations

import itertools
import logging
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import gevent
import zmq.green as zmq

from fannode.discovery.base import InstanceInfo, Registry
from fannode.exceptions import RegistryUnavailable, RpcError, UsageError
from fannode.zmqrpc import protocol
from fannode.zmqrpc.connection import Call, Connection

log = logging.getLogger(__name__)

DEFAULT_PORT = 4010
CONNECT_TIMEOUT = 0.5   # how long a first contact may take before we call the hub absent
REGISTER_WAIT = 5.0     # an instance started beside its hub may wait this long for it
CALL_TIMEOUT = 2.0
HEARTBEAT_EVERY = 0.5   # well inside the hub's 2 s instance lease
SYNC_EVERY = 1.0        # renews watches and repairs any missed notification
_ids = itertools.count(1)


def hub_endpoint(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != 'hub':
        raise UsageError("not a hub URL: %r" % url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise UsageError("bad port in hub URL %r" % url) from None
    return 'tcp://%s:%d' % (parts.hostname or '127.0.0.1', port)


class HubRegistry(Registry):
    def __init__(self, url: str, context: zmq.Context | None = None):
        super().__init__(url)
        self.endpoint = hub_endpoint(url)
        self.conn = Connection(context or zmq.Context.instance(), self.endpoint, self._on_notify)
        self.cache: dict[str, tuple[str, list[InstanceInfo]]] = {}
        self.registered: dict[str, InstanceInfo] = {}
        self._loops: list[gevent.Greenlet] = []
        self._outage = False

    def call(self, method: str, timeout: float = CALL_TIMEOUT, **body: Any) -> Any:
        if not self.conn.wait_connected(CONNECT_TIMEOUT):
            raise RegistryUnavailable(
                'cannot reach the hub at %s: start one with `fannode hub` or `fannode up`, '
                'or point --registry / $FANNODE_REGISTRY at a running one' % self.url)
        call = Call('hub.' + method, next(_ids), timeout)
        msg = protocol.Message(protocol.REQ, call.id, call.subject, body,
                               deadline_ms=int(timeout * 1000))
        if not self.conn.send(msg.encode(), call):
            raise RegistryUnavailable('lost the hub at %s' % self.url)
        try:
            return call.get()
        except RpcError as e:
            raise RegistryUnavailable('the hub at %s did not answer: %s' % (self.url, e)) from None

    # -- lookups -----------------------------------------------------------------

    def lookup(self, service: str) -> list[InstanceInfo]:
        cached = self.cache.get(service)
        if cached is None:
            self._apply(self.call('lookup', service=service, watch=True))
            self._start(self._sync_loop)
            cached = self.cache[service]
        return cached[1]

    def services(self) -> dict[str, list[InstanceInfo]]:
        found = self.call('services')
        return {name: [InstanceInfo.from_dict(i) for i in instances] for name, instances in found.items()}

    def _on_notify(self, msg: protocol.Message) -> None:
        if msg.subject == 'registry.changed' and msg.body.get('service') in self.cache:
            self._apply(msg.body)

    def _apply(self, snapshot: dict[str, Any]) -> None:
        service = snapshot['service']
        instances = [InstanceInfo.from_dict(i) for i in snapshot['instances']]
        self.cache[service] = (snapshot['version'], instances)
        for listener in self.listeners:
            listener(service, instances)

    def _sync_loop(self) -> None:
        while True:
            gevent.sleep(SYNC_EVERY)
            self._guarded(lambda: [self._apply(s) for s in self.call(
                'sync', versions={k: v[0] for k, v in self.cache.items()}).values()])

    # -- registration ------------------------------------------------------------

    def register(self, instance: InstanceInfo) -> None:
        deadline = time.monotonic() + REGISTER_WAIT
        while True:
            try:
                self.call('register', instance=instance.to_dict())
                break
            except RegistryUnavailable as e:
                if time.monotonic() >= deadline:
                    raise
                if not self._outage:
                    log.warning('%s; waiting up to %gs', e, REGISTER_WAIT)
                self._outage = True
        self._outage = False
        self.registered[instance.id] = instance
        self._start(self._heartbeat_loop)

    def unregister(self, instance: InstanceInfo) -> None:
        self.registered.pop(instance.id, None)
        try:
            self.call('unregister', id=instance.id, timeout=1.0)
        except RegistryUnavailable as e:
            log.warning('could not unregister %s: %s', instance.id[:8], e)

    def _heartbeat_loop(self) -> None:
        while True:
            gevent.sleep(HEARTBEAT_EVERY)
            if self.registered:
                self._guarded(self._heartbeat)

    def _heartbeat(self) -> None:
        reply = self.call('heartbeat', ids=list(self.registered))
        for instance_id in reply['unknown']:  # the hub restarted or expired us: announce again
            instance = self.registered.get(instance_id)
            if instance is not None:
                log.info('re-registering %s with the hub at %s', instance_id[:8], self.url)
                self.call('register', instance=instance.to_dict())

    def _guarded(self, work: Callable[[], Any]) -> None:
        """Run a background exchange; log an outage once and its end once."""
        try:
            work()
        except RegistryUnavailable as e:
            if not self._outage:
                log.warning('%s; retrying', e)
            self._outage = True
            return
        if self._outage:
            log.info('the hub at %s is back', self.url)
        self._outage = False

    def _start(self, loop: Callable[[], None]) -> None:
        if not any(g.name == loop.__name__ for g in self._loops):
            greenlet = gevent.spawn(loop)
            greenlet.name = loop.__name__
            self._loops.append(greenlet)

    def close(self) -> None:
        gevent.killall(self._loops, block=False)
        self.conn.close()
