"""`fannode up --check --show-env BLOCK`: the environment a block's processes get, each
variable with where it comes from, as a .env file you could read back (or as JSON)."""
from __future__ import annotations

import os
from typing import Any


def show_env(topology: Any, name: str, reveal: bool, as_json: bool) -> int:
    from fannode.cli import output
    from fannode.core.text import visible
    from fannode.exceptions import UsageError
    from fannode.node import envfiles

    spec = topology.instances.get(name)
    if spec is None:
        raise UsageError("--show-env: no block '%s' in %s (blocks: %s)" % (
            name, os.path.basename(topology.path), ', '.join(topology.instances) or 'none'))
    env, origin = resolved(topology, spec)
    rows = envfiles.shown(env, origin, reveal)
    if as_json:
        output.print_json({'block': name, 'file': topology.path, 'env': rows,
                           'inherited': 'the environment `fannode up` runs in, below these'})
        return 0
    output.out.print('# %s: what its processes get, on top of the environment `fannode up` runs in%s' % (
        name, '' if reveal else '; secrets hidden (--reveal shows them)'), markup=False)
    width = max((len('%s=%s' % (r['name'], _quoted(str(r['value'])))) for r in rows), default=0)
    for row in rows:
        text = '%s=%s' % (row['name'], _quoted(str(row['value'])))
        output.out.print(visible('%s  # %s' % (text.ljust(width), row['source'])), markup=False)
    return 0


def resolved(topology: Any, spec: Any) -> tuple[dict[str, str], dict[str, str]]:
    """What fannode.node.launch gives a process, with the source of each variable; the
    ones known only once it runs (its worker index, socket descriptors) are shown for
    the first process."""
    from fannode.node.launch import LEAVE_GRACE
    env = {'PYTHONUNBUFFERED': '1', 'FANNODE_REGISTRY': topology.registry, 'FANNODE_EVENTS': topology.events,
           'FANNODE_NODE': os.uname().nodename,  # the node's name (Node.name)
           'FANNODE_BLOCK': spec.name, 'FANNODE_WORKER_INDEX': '1'}
    if spec.runs_fannode:
        env['FANNODE_LOG_FORMAT'] = 'json'
    origin = dict.fromkeys(env, 'node')
    env.update(spec.env_dict())
    origin.update(dict(spec.env_from))
    if spec.version:  # as fannode.node.launch: over the block's env
        env['FANNODE_VERSION'], origin['FANNODE_VERSION'] = spec.version, 'node: version'
    if 'FANNODE_LEAVE_GRACE' not in env:
        env['FANNODE_LEAVE_GRACE'], origin['FANNODE_LEAVE_GRACE'] = str(LEAVE_GRACE), 'node'
    if spec.sockets:
        env['FANNODE_SOCKETS'] = ','.join('%s=FD' % s for s in spec.sockets)
        origin['FANNODE_SOCKETS'] = 'node'
    if spec.port is not None:
        env['PORT'] = str(spec.port)
        origin['PORT'] = 'node: Procfile, %d + worker index - 1' % spec.port
    origin['FANNODE_WORKER_INDEX'] = 'node: 1..%d' % max(1, spec.numprocesses)
    return env, origin


def _quoted(value: str) -> str:
    """As a .env line would say it: bare when it can be, else double quotes."""
    if value and all(c.isalnum() or c in '_-.,/:@+%=' for c in value):
        return value
    if '$' in value and "'" not in value and '\n' not in value:  # single quotes: no ${VAR} expansion
        return "'%s'" % value
    return '"%s"' % value.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
