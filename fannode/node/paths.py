"""Where a node keeps its control socket and lock: one set per node.yml, so two
projects' nodes never collide and a second `fannode up` of the same one is refused.

The directory is the user's runtime directory (fannode.core.rundir): whoever can write in
it can drive the node (and, through circus' own endpoint, run any command).
"""
from __future__ import annotations

import hashlib
import os

from fannode.core.rundir import check_private, runtime_dir
from fannode.exceptions import FannodeError

__all__ = ['check_private', 'control_endpoint', 'node_key', 'node_path', 'private_file', 'runtime_dir']


def node_key(node_file: str) -> str:
    # the real path: the same file through a symlinked directory is the same node
    return hashlib.sha1(os.path.realpath(node_file).encode()).hexdigest()[:12]


# sizeof(sockaddr_un.sun_path) - 1 on Linux: a longer socket path cannot be bound at all
SOCKET_PATH_MAX = 107


def node_path(node_file: str, suffix: str) -> str:
    path = os.path.join(runtime_dir(), 'node-%s.%s' % (node_key(node_file), suffix))
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        raise FannodeError('the runtime directory %s is too long for the node\'s sockets (their paths '
                           'would be %d bytes, at most %d fit): set $XDG_RUNTIME_DIR to a shorter directory'
                           % (os.path.dirname(path), len(os.fsencode(path)), SOCKET_PATH_MAX))
    return path


def control_endpoint(node_file: str) -> str:
    return 'ipc://' + node_path(node_file, 'control')


def private_file(path: str) -> None:
    """Mode 0600 for a socket or file the node made (the umask may have left it open)."""
    try:
        os.chmod(path, 0o600)
    except FileNotFoundError:
        pass
