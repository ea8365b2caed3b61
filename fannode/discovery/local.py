"""`local://name`: discovery inside one process, for tests of services without a hub.
Every registry with the same URL in one process sees the same instances."""
from __future__ import annotations

from fannode.discovery.base import InstanceInfo, Registry

_instances: dict[str, dict[str, InstanceInfo]] = {}   # url → instance id → info
_registries: dict[str, list['LocalRegistry']] = {}


class LocalRegistry(Registry):
    def __init__(self, url: str):
        super().__init__(url)
        self.known = _instances.setdefault(url, {})
        _registries.setdefault(url, []).append(self)

    def lookup(self, service: str) -> list[InstanceInfo]:
        return [i for i in self.known.values() if service in i.services]

    def services(self) -> dict[str, list[InstanceInfo]]:
        names = sorted({s for i in self.known.values() for s in i.services})
        return {name: self.lookup(name) for name in names}

    def register(self, instance: InstanceInfo) -> None:
        self.known[instance.id] = instance
        self._changed(instance.services)

    def unregister(self, instance: InstanceInfo) -> None:
        if self.known.pop(instance.id, None) is not None:
            self._changed(instance.services)

    def _changed(self, services: list[str]) -> None:
        for registry in _registries.get(self.url, []):
            for service in services:
                for listener in registry.listeners:
                    listener(service, registry.lookup(service))

    def close(self) -> None:
        peers = _registries.get(self.url, [])
        if self in peers:
            peers.remove(self)
        if not peers:  # the last one out: the next test with this URL starts empty
            _registries.pop(self.url, None)
            _instances.pop(self.url, None)
