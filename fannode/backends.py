"""What packages add through entry points: backends chosen by URL scheme (registries,
event brokers, shared config) and transports chosen by name."""
from __future__ import annotations

from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from fannode.exceptions import UsageError


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition('://')
    if not sep or not scheme:
        raise UsageError("bad URL %r: expected scheme://..., e.g. hub://127.0.0.1:4010" % url)
    return scheme


@lru_cache(maxsize=None)
def registered(group: str) -> dict[str, EntryPoint]:
    """The entry points of `group`, by name; read once a process (installed packages
    do not change under a running process)."""
    return {ep.name: ep for ep in entry_points(group=group)}


def schemes(group: str) -> list[str]:
    """The URL schemes `group` has a backend for."""
    return sorted(registered(group))


def load_backend(group: str, url: str) -> Any:
    """The class registered under `group` for the scheme of `url`."""
    scheme = scheme_of(url)
    found = registered(group)
    if scheme not in found:
        known = ', '.join(sorted(found)) or 'none installed'
        raise UsageError("no %s backend for scheme '%s' in %r (known: %s)"
                         % (group.rsplit('.', 1)[-1], scheme, url, known))
    return found[scheme].load()


def load_named(group: str, name: str) -> Any:
    """The class registered under `group` as `name`."""
    found = registered(group)
    if name not in found:
        raise UsageError("no %s named '%s' is installed (known: %s)"
                         % (group.rsplit('.', 1)[-1].rstrip('s'), name, ', '.join(sorted(found)) or 'none'))
    return found[name].load()
