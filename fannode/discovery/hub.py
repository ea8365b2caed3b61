"""`hub://host:port`: discovery through the embedded hub (`fannode hub`, `fannode up`)."""
from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import zmq.green as zmq

from fannode.core import wire
from fannode.discovery.base import InstanceInfo, Registry
from fannode.exceptions import RegistryUnavailable, Unavailable
from fannode.hub.client import HubLink, HubRefused

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 0.5   # well inside the hub's 2 s instance lease
SYNC_EVERY = 1.0        # renews watches and repairs any missed notification
REGISTER_WAIT = 5.0     # an instance started beside its hub may wait this long for it


class HubRegistry(Registry):
    def __init__(self, url: str, context: zmq.Context | None = None):
        super().__init__(url)
        self.link = HubLink(url, self._on_notify, context)
        self.cache: dict[str, tuple[str, list[InstanceInfo]]] = {}
        self.registered: dict[str, InstanceInfo] = {}

    def call(self, method: str, **body: Any) -> Any:
        return self.link.call(method, **body)

    # -- lookups -----------------------------------------------------------------

    def lookup(self, service: str) -> list[InstanceInfo]:
        cached = self.cache.get(service)
        if cached is None:
            self._apply(self.call('lookup', service=service, watch=True))
            self.link.start(self._sync_loop)
            cached = self.cache[service]
        return cached[1]

    def services(self) -> dict[str, list[InstanceInfo]]:
        found = self.call('services')
        return {name: [InstanceInfo.from_dict(i) for i in instances] for name, instances in found.items()}

    def _on_notify(self, msg: wire.Message) -> None:
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
            self.link.guarded(self._sync)

    def _sync(self) -> None:
        for snapshot in self.call('sync', versions={k: v[0] for k, v in self.cache.items()}).values():
            self._apply(snapshot)

    # -- registration ------------------------------------------------------------

    def register(self, instance: InstanceInfo) -> None:
        deadline = time.monotonic() + REGISTER_WAIT
        while True:
            try:
                self.call('register', instance=instance.registration())
                break
            except RegistryUnavailable as e:
                refused = isinstance(e, HubRefused) and not isinstance(e.answer, Unavailable)
                if refused or time.monotonic() >= deadline:  # waiting would not change a "no"
                    raise
                if not self.link.outage:
                    log.warning('%s; waiting up to %gs', e, REGISTER_WAIT)
                self.link.outage = True
        self.link.outage = False
        self.registered[instance.id] = instance
        self.link.start(self._heartbeat_loop)

    def unregister(self, instance: InstanceInfo) -> None:
        self.registered.pop(instance.id, None)
        try:
            self.link.call('unregister', timeout=1.0, id=instance.id)
        except RegistryUnavailable as e:
            log.warning('could not unregister %s: %s', instance.id[:8], e)

    def _heartbeat_loop(self) -> None:
        while True:
            gevent.sleep(HEARTBEAT_EVERY)
            if self.registered:
                self.link.guarded(self._heartbeat)

    def _heartbeat(self) -> None:
        reply = self.call('heartbeat', ids=list(self.registered))
        for instance_id in reply['unknown']:  # the hub restarted or expired us: announce again
            instance = self.registered.get(instance_id)
            if instance is not None:
                log.info('re-registering %s with the hub at %s', instance_id[:8], self.url)
                self.call('register', instance=instance.registration())

    def close(self) -> None:
        self.link.close()
