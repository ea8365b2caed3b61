"""HTTP services on werkzeug, served by gevent inside the worker."""
from __future__ import annotations

__all__ = ['WebInterface', 'route', 'sharded']


def __getattr__(name: str) -> object:
    if name == 'WebInterface':  # lazily: werkzeug only where a service serves HTTP
        from fannode.web.interface import WebInterface
        return WebInterface
    if name == 'route':
        from fannode.web.doors import route
        return route
    if name == 'sharded':
        from fannode.web.shards import sharded
        return sharded
    raise AttributeError("module 'fannode.web' has no attribute %r" % name)
