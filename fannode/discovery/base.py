"""What every discovery backend offers; one module per URL scheme implements it."""
from __future__ import annotations

import abc
from typing import Callable

from fannode.core.instance import InstanceInfo

__all__ = ['InstanceInfo', 'Registry']


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
