"""The shared config behind `fannode.unique_id(...)` outside a service: one per registry
URL in this process, made on first use and kept (its id blocks with it)."""
from __future__ import annotations

from gevent.lock import Semaphore

from fannode.sharedconfig import SharedConfig, get_shared_config

_made: dict[str, SharedConfig] = {}
_making = Semaphore()


def shared_config_for(url: str) -> SharedConfig:
    config = _made.get(url)
    if config is None:
        with _making:  # connecting yields: two first callers must not make two
            config = _made.get(url)
            if config is None:
                config = _made[url] = get_shared_config(url)
    return config
