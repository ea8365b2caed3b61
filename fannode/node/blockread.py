"""Reading one block of node.yml's `instances:` into an InstanceSpec; every error is a
one-line ConfigError naming the file, the line and the key."""
from __future__ import annotations

import math
import os
import shlex
from dataclasses import replace
from typing import Any

from fannode.core.config import Config
from fannode.exceptions import ConfigError
from fannode.node import dependson, envfiles
from fannode.node.livecheck import read_liveness
from fannode.node.readycheck import ReadyCheck, read_ready
from fannode.node.resources import read_limits
from fannode.node.reloadkey import read_reload
from fannode.node.rolloutspec import read_rollout, read_version
from fannode.node.spec import NAME_MAX, InstanceSpec, SocketSpec

BLOCK_KEYS = ('command', 'numprocesses', 'sockets', 'env', 'cwd', 'stop_timeout', 'restart',
              'max_restarts', 'depends_on', 'ready', 'reload', 'logs',
              'version', 'rollout', 'liveness', 'limits', 'env_file', 'preload')
RESTART_POLICIES = ('always', 'on-failure', 'never')


def read_env(owner: Config, key: str) -> dict[str, str]:
    section = owner.section(key)
    env = {}
    for name in section:
        if not isinstance(name, str) or not name or '=' in name:
            raise section.error(name, 'bad environment variable name %r' % (name,))
        value = section.require(name, (str, int, float, bool))
        # YAML `true` should reach the process as the user wrote it, not as Python's 'True'
        env[name] = ('true' if value else 'false') if isinstance(value, bool) else str(value)
    return env



def read_block(instances: Config, name: str, names: list[str], node_env: dict[str, str],
              sockets: dict[str, SocketSpec], base_dir: str, node_from: dict[str, str] | None = None) -> InstanceSpec:
    prefix = 'instances.%s' % name
    if isinstance(instances.get(name), (str, list)):
        # `greeting: fannode instance ...` is short for {command: ...}; errors point at the name
        command, argv = _command(instances, name)
        block = Config({}, instances.source, prefix=prefix)
    else:
        block = instances.section(name)
        block.check_keys(BLOCK_KEYS)
        command, argv = _command(block, 'command')
    numprocesses = _at_least(block, 'numprocesses', int, 1, 0)
    used = _names(block, 'sockets')
    for i, sock in enumerate(used):
        if sock not in sockets:
            declared = ', '.join(sockets) or 'none'
            raise block.error(_item('sockets', i, block), "unknown socket '%s' (declared under "
                                                           'sockets: %s)' % (sock, declared))
    # node env < the block's env_file < its env (fannode.node.envfiles); env_from: where each is from
    env, env_from = envfiles.layer(block, (node_env, node_from or {}), read_env(block, 'env'), base_dir,
                                   prefix + '.env')
    if env.get('PYTHONPATH'):  # relative to node.yml, as the docs say, not to the block's cwd
        env['PYTHONPATH'] = os.pathsep.join(os.path.join(base_dir, p) if p else p
                                            for p in env['PYTHONPATH'].split(os.pathsep))
    cwd = block.require('cwd', str, None)
    if cwd is not None:
        cwd = os.path.abspath(os.path.join(base_dir, os.path.expanduser(cwd)))
        if not os.path.isdir(cwd):
            raise block.error('cwd', 'no such directory: %s' % cwd)
    stop_timeout = _at_least(block, 'stop_timeout', float, 10.0, 0)
    restart = block.require('restart', str, 'always')
    if restart not in RESTART_POLICIES:
        raise block.error('restart', 'expected one of: %s, got %r' % (', '.join(RESTART_POLICIES), restart))
    max_restarts = _at_least(block, 'max_restarts', int, 10, 0)
    conditions = dependson.read(block, name, names)  # `{db: {condition: ...}}`; None for a list
    depends_on = _names(block, 'depends_on') if conditions is None else tuple(c[0] for c in conditions)
    for i, dep in enumerate(depends_on):
        key = _item('depends_on', i, block)
        if dep == name:
            raise block.error(key, 'an instance cannot depend on itself')
        if dep not in names:
            raise block.error(key, "unknown instance '%s' (instances: %s)" % (dep, ', '.join(names)))
    spec = InstanceSpec(name, command, argv, numprocesses, used, tuple(sorted(env.items())), cwd,
                        stop_timeout, restart, max_restarts, depends_on,
                        line=instances._line(prefix) or 0)  # Config has no public line lookup
    default = ReadyCheck('registered' if spec.is_service else 'started')
    ready = read_ready(block, used) if 'ready' in block else default
    return replace(spec, ready=ready, reload=read_reload(block, cwd or base_dir, env, base_dir),
                   version=read_version(block), rollout=read_rollout(block),
                   liveness=read_liveness(block, used, spec.is_service), limits=read_limits(block),
                   conditions=dependson.plain(depends_on) if conditions is None else conditions,
                   env_from=tuple(sorted(env_from.items())), preload=block.require('preload', bool, True))


def bad_name(section: Config, name: Any, what: str) -> ConfigError:
    message = 'bad %s name %%s: expected up to %d letters, digits, _ . - (starting with a letter or digit)' % (
        what, NAME_MAX)
    text = repr(name)
    if len(text) <= 80:
        return section.error(name, message % text)
    # a long name is not repeated in the key: the error stays one readable line
    line = section._line('%s.%s' % (section.prefix, name)) or 0  # Config has no public line lookup
    short = '%s... (%d characters)' % (text[:40], len(str(name)))
    return ConfigError('%s:%d: %s: %s' % (section.source, line, section.prefix, message % short))


def _command(owner: Config, key: str) -> tuple[str, tuple[str, ...]]:
    value = owner.require(key, (str, list))
    if isinstance(value, list):
        # `[redis-server, --port, 6390]`: YAML makes 6390 an int, fine in a command line
        command = shlex.join(str(owner.require('%s.%d' % (key, i), (str, int, float)))
                             for i in range(len(value)))
    else:
        command = value
    try:
        argv = tuple(shlex.split(command))
    except ValueError as e:  # 'No closing quotation'
        raise owner.error(key, 'cannot split the command: %s' % e) from None
    if not argv:
        raise owner.error(key, 'must not be empty')
    return command, argv


def _at_least(block: Config, key: str, kind: type, default: Any, low: float) -> Any:
    value = block.require(key, kind, default)
    if not math.isfinite(value) or value < low:
        raise block.error(key, 'expected a %s >= %s, got %r' % (
            'number' if kind is float else 'whole number', low, value))
    return value


def _names(block: Config, key: str) -> tuple[str, ...]:
    """A list of names, or one name alone; repeats are dropped."""
    value = block.require(key, (list, str), [])
    if isinstance(value, str):
        return (value,)
    return tuple(dict.fromkeys(block.require('%s.%d' % (key, i), str) for i in range(len(value))))


def _item(key: str, index: int, block: Config) -> str:
    # `depends_on: greeting` has no item 0 to point at
    return key if isinstance(block.get(key), str) else '%s.%d' % (key, index)

