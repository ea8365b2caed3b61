"""Events backends, chosen by URL scheme (entry point group `fannode.events`)."""
from __future__ import annotations

from fannode.events.base import EventSystem, Subscription
from fannode.backends import load_backend

__all__ = ['EventSystem', 'Subscription', 'get_events']


def get_events(url: str) -> EventSystem:
    return load_backend('fannode.events', url)(url)
