"""Where a node keeps its control socket and lock: one set per node.yml, so two
projects' nodes never collide and a second `fannode up` of the same one is refused."""
from __future__ import annotations

import hashlib
import os


def runtime_dir() -> str:
    base = os.environ.get('XDG_RUNTIME_DIR')
    path = os.path.join(base, 'fannode') if base else '/tmp/fannode-%d' % os.getuid()
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def node_key(node_file: str) -> str:
    return hashlib.sha1(os.path.abspath(node_file).encode()).hexdigest()[:12]


def node_path(node_file: str, suffix: str) -> str:
    return os.path.join(runtime_dir(), 'node-%s.%s' % (node_key(node_file), suffix))


def control_endpoint(node_file: str) -> str:
    return 'ipc://' + node_path(node_file, 'control')
