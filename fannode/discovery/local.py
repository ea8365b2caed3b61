"""`local://name`: discovery inside one process, for tests of services without a hub.
Every registry with the same URL in one process sees the same instances.

It keeps the promises hub:// and zookeeper:// keep (tests/contracts checks all three):
records travel through the wire codec, so a lookup gets a copy as a hub client would
(tuples come back as lists); listeners hear only of services looked up through their
registry, first of what the lookup found; an instance goes with the registry that
announced it, as the hub expires it and ZooKeeper ends its session.
"""
from __future__ import annotations

from fannode.core import serial
from fannode.discovery.base import InstanceInfo, Registry

_instances: dict[str, dict[str, tuple[list[str], bytes]]] = {}   # url → id → (services, record)
_registries: dict[str, list['LocalRegistry']] = {}


class LocalRegistry(Registry):
    def __init__(self, url: str):
        super().__init__(url)
        self.known = _instances.setdefault(url, {})
        self.cache: dict[str, list[InstanceInfo]] = {}   # looked-up service → its instances
        self.registered: set[str] = set()                # ids announced through this registry
        _registries.setdefault(url, []).append(self)

    def lookup(self, service: str) -> list[InstanceInfo]:
        cached = self.cache.get(service)
        if cached is None:  # the first lookup watches it, and listeners hear what it found
            cached = self._refresh(service)
        return cached

    def services(self) -> dict[str, list[InstanceInfo]]:
        names = sorted({s for services, _ in self.known.values() for s in services})
        return {name: self._read(name) for name in names}

    def register(self, instance: InstanceInfo) -> None:
        # Encoded now, as the hub client does: a record it cannot send is refused here.
        record = serial.dumps(instance.to_dict())
        old = self.known.get(instance.id)
        self.known[instance.id] = (list(instance.services), record)
        self.registered.add(instance.id)
        self._changed(set(instance.services) | set(old[0] if old else ()))

    def unregister(self, instance: InstanceInfo) -> None:
        self.registered.discard(instance.id)
        self._withdraw(instance.id)

    def _withdraw(self, instance_id: str) -> None:
        old = self.known.pop(instance_id, None)
        if old is not None:
            self._changed(set(old[0]))

    def _read(self, service: str) -> list[InstanceInfo]:
        found = [InstanceInfo.from_dict(serial.loads(record))   # type: ignore[arg-type]
                 for services, record in self.known.values() if service in services]
        return sorted(found, key=lambda i: i.started)  # oldest first, as the hub lists them

    def _refresh(self, service: str) -> list[InstanceInfo]:
        instances = self.cache[service] = self._read(service)
        for listener in self.listeners:
            listener(service, instances)
        return instances

    def _changed(self, services: set[str]) -> None:
        for registry in list(_registries.get(self.url, [])):
            for service in sorted(services):
                if service in registry.cache:
                    registry._refresh(service)

    def close(self) -> None:
        for instance_id in list(self.registered):
            self._withdraw(instance_id)
        self.registered.clear()
        peers = _registries.get(self.url, [])
        if self in peers:
            peers.remove(self)
        if not peers:  # the last one out: the next test with this URL starts empty
            _registries.pop(self.url, None)
            _instances.pop(self.url, None)
