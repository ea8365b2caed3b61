"""Where the registry and the event broker are: flag, environment, ./node.yml, default."""
from __future__ import annotations

import os

DEFAULT_HUB = 'hub://127.0.0.1:4010'
NODE_FILE = 'node.yml'


def resolve_url(kind: str, flag: str | None = None, node_file: str = NODE_FILE) -> str:
    """The URL for `kind` ('registry' or 'events'): `--registry`/`--events`, then
    `$FANNODE_REGISTRY`/`$FANNODE_EVENTS`, then `registry:`/`events:` in ./node.yml,
    then the local hub. `hub` alone means the local hub's default address."""
    url = flag or os.environ.get('FANNODE_' + kind.upper()) or _from_node_file(kind, node_file)
    if not url or url == 'hub':
        return DEFAULT_HUB
    return url


def resolve_events_url(flag: str | None, registry_flag: str | None, node_file: str = NODE_FILE) -> str:
    """Like resolve_url('events'), except that with no events URL set anywhere, events go
    to the hub the registry names: `--registry hub://127.0.0.1:5000` alone means both."""
    url = flag or os.environ.get('FANNODE_EVENTS') or _from_node_file('events', node_file)
    if url and url != 'hub':
        return url
    # `hub` (or nothing) means the hub of this cluster: the one the registry names, if it is one
    registry = resolve_url('registry', registry_flag, node_file)
    return registry if registry.startswith('hub://') else DEFAULT_HUB


def _from_node_file(kind: str, path: str) -> str | None:
    if not os.path.exists(path):
        return None
    from fannode.core.config import load_config
    config = load_config(path)
    value = config.get(kind)
    if value is not None and not isinstance(value, str):
        raise config.error(kind, 'expected a URL string, got %s' % type(value).__name__)
    return value
