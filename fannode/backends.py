"""Backends and commands that packages add through entry points."""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from fannode.exceptions import UsageError


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition('://')
    if not sep or not scheme:
        raise UsageError("bad URL %r: expected scheme://..., e.g. hub://127.0.0.1:4010" % url)
    return scheme


def load_backend(group: str, url: str) -> Any:
    """The class registered under `group` for the scheme of `url`."""
    scheme = scheme_of(url)
    found = {ep.name: ep for ep in entry_points(group=group)}
    if scheme not in found:
        known = ', '.join(sorted(found)) or 'none installed'
        raise UsageError("no %s backend for scheme '%s' in %r (known: %s)"
                         % (group.rsplit('.', 1)[-1], scheme, url, known))
    return found[scheme].load()
