"""The process-wide events backend behind `fannode.emit(...)` in plain code; an
instance installs its own, so emits from anywhere in it share its connection."""
from __future__ import annotations

from typing import Any

from fannode.events.base import EventSystem

_events: EventSystem | None = None


def set_events(events: EventSystem | None) -> None:
    global _events
    _events = events


def get_events(url: str | None = None) -> EventSystem:
    global _events
    if _events is None:
        from fannode.events import get_events as backend
        from fannode.settings import resolve_events_url
        _events = backend(resolve_events_url(url, None))
    return _events


def emit(event_type: str, body: dict[str, Any] | None = None, delay: float | None = None,
         source: str = '', ttl: float | None = None) -> None:
    from fannode.core import trace
    from fannode.core.events import Event, check_body, check_type
    get_events().emit(Event.new(check_type(event_type), check_body(event_type, body), trace.ensure_id(),
                                source, ttl), delay)
