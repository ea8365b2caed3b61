"""Discovery backends, chosen by URL scheme (entry point group `fannode.registry`)."""
from __future__ import annotations

from fannode.discovery.base import InstanceInfo, Registry
from fannode.backends import load_backend

__all__ = ['InstanceInfo', 'Registry', 'get_registry']


def get_registry(url: str) -> Registry:
    return load_backend('fannode.registry', url)(url)
