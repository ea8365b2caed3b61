"""Listening sockets a node hands to its children, by name (no werkzeug here: every
instance reads this, web service or not)."""
from __future__ import annotations

import os

from fannode.exceptions import ConfigError

SOCKETS_ENV = 'FANNODE_SOCKETS'  # "web=5,api=6": listening sockets inherited by fd


def inherited_sockets(spec: str | None = None) -> dict[str, int]:
    """Names of inherited listening sockets and their fds, from `spec` or $FANNODE_SOCKETS."""
    spec = os.environ.get(SOCKETS_ENV, '') if spec is None else spec
    found = {}
    for item in filter(None, (s.strip() for s in spec.split(','))):
        name, sep, fd = item.partition('=')
        if not sep or not fd.isdigit():
            raise ConfigError("bad socket %r: expected NAME=FD, e.g. web=5" % item)
        found[name] = int(fd)
    return found
