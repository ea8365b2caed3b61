"""What every discovery backend offers; one module per URL scheme implements it."""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable


@dataclasses.dataclass
class InstanceInfo:
    """One running instance as the registry knows it."""

    id: str
    endpoint: str
    services: list[str]
    pid: int = 0
    host: str = ''
    version: str = ''
    started: float = 0.0
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'InstanceInfo':
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


class Registry(abc.ABC):
    """Discovery: who offers which service, kept current without polling by callers."""

    def __init__(self, url: str):
        self.url = url
        self.listeners: list[Callable[[str, list[InstanceInfo]], None]] = []

    def add_listener(self, listener: Callable[[str, list[InstanceInfo]], None]) -> None:
        """`listener(service, instances)` after every change seen to a looked-up service."""
        self.listeners.append(listener)

    @abc.abstractmethod
    def lookup(self, service: str) -> list[InstanceInfo]:
        """Instances of `service`, from a cache that the backend keeps current."""

    @abc.abstractmethod
    def services(self) -> dict[str, list[InstanceInfo]]:
        """Every service with its instances, asked of the backend now."""

    @abc.abstractmethod
    def register(self, instance: InstanceInfo) -> None:
        """Announce `instance` and keep it announced (heartbeats, re-registration)."""

    @abc.abstractmethod
    def unregister(self, instance: InstanceInfo) -> None:
        """Withdraw `instance` at once."""

    def close(self) -> None:
        """Release connections; registered instances are withdrawn by the caller first."""
