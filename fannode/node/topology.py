"""node.yml, the topology of `fannode up`: what to run, checked up front (what changed
between two versions of it, for live edits, is fannode.node.changes).

Every error is a one-line ConfigError ``node.yml:LINE: key.path: message``.
"""
from __future__ import annotations

import math
import os
import re
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from fannode.backends import schemes
from fannode.core.config import Config, load_config, loads_config
from fannode.core.limits import setting
from fannode.exceptions import ConfigError
from fannode.node import capacity
from fannode.node import servicedeps
from fannode.node.readycheck import ReadyCheck, read_ready
from fannode.settings import DEFAULT_HUB

HUB_BLOCK = 'hub'  # reserved instance name when the node hosts the hub
# A name prefixes every line its processes print: a long one is a mistake (or an attack
# through the control socket, which checks names against this too).
NAME_MAX = setting('FANNODE_MAX_NAME', 64, low=1)

_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')
_TOP_KEYS = ('registry', 'events', 'env', 'sockets', 'instances')
_BLOCK_KEYS = ('command', 'numprocesses', 'sockets', 'env', 'cwd', 'stop_timeout', 'restart',
               'max_restarts', 'depends_on', 'ready')
_RESTART_POLICIES = ('always', 'on-failure', 'never')
_LOCAL_HOSTS = ('127.0.0.1', 'localhost')


@dataclass(frozen=True)
class SocketSpec:
    name: str
    host: str = '0.0.0.0'
    port: int = 0


@dataclass(frozen=True)
class InstanceSpec:
    name: str
    command: str
    argv: tuple[str, ...]
    numprocesses: int = 1
    sockets: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # effective: node env + block env, sorted
    cwd: str | None = None
    stop_timeout: float = 10.0
    restart: str = 'always'
    max_restarts: int = 10
    depends_on: tuple[str, ...] = ()
    ready: ReadyCheck = ReadyCheck('started')
    # (block, service): hard dependencies of its service config that other blocks serve
    implied: tuple[tuple[str, str], ...] = ()
    line: int = field(default=0, compare=False)  # moving a block in the file changes nothing

    @property
    def fannode_args(self) -> tuple[str, ...] | None:
        """The arguments after `fannode` (or `python -m fannode[.cli]`); None for other commands."""
        argv = self.argv
        if os.path.basename(argv[0]) == 'fannode':
            return argv[1:]
        if (len(argv) >= 3 and os.path.basename(argv[0]).startswith('python')
                and argv[1] == '-m' and argv[2] in ('fannode', 'fannode.cli')):
            return argv[3:]
        return None

    @property
    def is_service(self) -> bool:
        """Runs `fannode instance ...` (or `python -m fannode[.cli] instance ...`)."""
        return (self.fannode_args or ('',))[0] == 'instance'

    @property
    def runs_fannode(self) -> bool:
        """Its processes write fannode's JSON records on stderr."""
        return self.fannode_args is not None

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def after(self) -> tuple[str, ...]:
        """The blocks it starts after: its depends_on and those its hard dependencies run on."""
        return tuple(dict.fromkeys(self.depends_on + tuple(block for block, _ in self.implied)))


@dataclass(frozen=True)
class Topology:
    path: str
    registry: str
    events: str
    env: tuple[tuple[str, str], ...]
    sockets: dict[str, SocketSpec] = field(compare=True)
    instances: dict[str, InstanceSpec] = field(compare=True)

    @property
    def hosts_hub(self) -> bool:
        return _is_local_hub(self.registry) or _is_local_hub(self.events)

    @property
    def runs_log_hub(self) -> bool:
        """No hub anywhere (ZooKeeper and RabbitMQ): the node runs a log hub of its own."""
        return _runs_log_hub(self.registry, self.events)

    def start_waves(self) -> list[list[str]]:
        """Each block goes one wave after its latest dependency; file order within a wave."""
        level: dict[str, int] = {}

        def depth(name: str) -> int:  # load() rejected cycles, so this ends
            if name not in level:
                level[name] = 1 + max((depth(d) for d in self.instances[name].after), default=-1)
            return level[name]

        waves: list[list[str]] = []
        for name in self.instances:
            n = depth(name)
            while len(waves) <= n:
                waves.append([])
            waves[n].append(name)
        return waves


def _runs_log_hub(registry: str, events: str) -> bool:
    return not (registry.startswith('hub://') or events.startswith('hub://'))


def _is_local_hub(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == 'hub' and (parts.hostname or '127.0.0.1') in _LOCAL_HOSTS


# ---------------------------------------------------------------- loading


def load(path: str | os.PathLike, env: Mapping[str, str] | None = None) -> Topology:
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = stat.S_IFREG  # load_config says why, in its words
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # it bounds the size of what it reads
        raise ConfigError('%s: not a regular file (a pipe or a device is read once, or never ends)' % path)
    config = load_config(path, env)  # messages name the path as the user gave it
    return _build(config, os.path.abspath(path), os.path.dirname(os.path.abspath(path)), env)


def loads(text: str, source: str = 'node.yml', base_dir: str = '.',
          env: Mapping[str, str] | None = None) -> Topology:
    config = loads_config(text, source, env)
    return _build(config, os.path.abspath(os.path.join(base_dir, source)), os.path.abspath(base_dir), env)


def _build(config: Config, path: str, base_dir: str, env: Mapping[str, str] | None = None) -> Topology:
    if not config:
        raise config.error('', 'empty file; expected %s' % '/'.join(_TOP_KEYS))
    config.check_keys(_TOP_KEYS)
    # The schemes some installed backend serves: what `fannode discover` and instances accept.
    registry = _url(config, 'registry', tuple(schemes('fannode.registry')))
    events = _url(config, 'events', tuple(schemes('fannode.events')))
    if registry is None:
        registry = DEFAULT_HUB
    if events is None or config.get('events') == 'hub':
        # as settings.resolve_events_url: events follow a hub registry; `events: hub`
        # means the hub this node runs, wherever the registry puts it
        events = registry if registry.startswith('hub://') else DEFAULT_HUB
    node_env = _env(config, 'env')
    sockets = _sockets(config)
    if 'instances' not in config:
        raise config.error('instances', 'missing (an empty cluster is `instances: {}`)')
    instances = config.section('instances')
    runs_hub = _is_local_hub(registry) or _is_local_hub(events) or _runs_log_hub(registry, events)
    names = []
    for name in instances:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > NAME_MAX:
            raise _bad_name(instances, name, 'instance')
        if name == HUB_BLOCK and runs_hub:
            raise instances.error(name, "'%s' is reserved for the hub the node runs" % HUB_BLOCK)
        names.append(name)
    specs = {name: _instance(instances, name, names, node_env, sockets, base_dir) for name in names}
    capacity.check_topology(instances, {name: spec.numprocesses for name, spec in specs.items()})
    for name, pairs in servicedeps.implied(specs, base_dir, env).items():
        specs[name] = replace(specs[name], implied=pairs)
    _check_cycles(instances, specs)
    return Topology(path, registry, events, tuple(sorted(node_env.items())), sockets, specs)


def _url(config: Config, key: str, schemes: tuple[str, ...]) -> str | None:
    value = config.require(key, (str, type(None)), None)
    if value is None or value == 'hub':
        return None if value is None else DEFAULT_HUB
    parts = urlsplit(value)
    expected = "expected 'hub' or a URL with scheme %s" % ', '.join(s + '://' for s in schemes)
    if '://' not in value or parts.scheme not in schemes:
        raise config.error(key, '%s, got %r' % (expected, value))
    try:
        parts.port  # noqa: B018 - a bad port raises here, not later in the supervisor
    except ValueError as e:
        raise config.error(key, 'bad URL %r: %s' % (value, e)) from None
    return value


def _env(owner: Config, key: str) -> dict[str, str]:
    section = owner.section(key)
    env = {}
    for name in section:
        if not isinstance(name, str) or not name or '=' in name:
            raise section.error(name, 'bad environment variable name %r' % (name,))
        value = section.require(name, (str, int, float, bool))
        # YAML `true` should reach the process as the user wrote it, not as Python's 'True'
        env[name] = ('true' if value else 'false') if isinstance(value, bool) else str(value)
    return env


def _sockets(config: Config) -> dict[str, SocketSpec]:
    section = config.section('sockets')
    sockets: dict[str, SocketSpec] = {}
    seen: dict[tuple[str, int], str] = {}
    for name in section:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > NAME_MAX:
            raise _bad_name(section, name, 'socket')
        sock = section.section(name)
        sock.check_keys(('host', 'port'))
        host = sock.require('host', str, '0.0.0.0')
        port = sock.require('port', int)
        if not 1 <= port <= 65535:
            raise sock.error('port', 'expected a port 1..65535, got %d' % port)
        if (host, port) in seen:
            raise sock.error('port', "%s:%d is already socket '%s'" % (host, port, seen[host, port]))
        seen[host, port] = name
        sockets[name] = SocketSpec(name, host, port)
    return sockets


def _instance(instances: Config, name: str, names: list[str], node_env: dict[str, str],
              sockets: dict[str, SocketSpec], base_dir: str) -> InstanceSpec:
    prefix = 'instances.%s' % name
    if isinstance(instances.get(name), (str, list)):
        # `greeting: fannode instance ...` is short for {command: ...}; errors point at the name
        command, argv = _command(instances, name)
        block = Config({}, instances.source, prefix=prefix)
    else:
        block = instances.section(name)
        block.check_keys(_BLOCK_KEYS)
        command, argv = _command(block, 'command')
    numprocesses = _at_least(block, 'numprocesses', int, 1, 0)
    used = _names(block, 'sockets')
    for i, sock in enumerate(used):
        if sock not in sockets:
            declared = ', '.join(sockets) or 'none'
            raise block.error(_item('sockets', i, block), "unknown socket '%s' (declared under "
                                                           'sockets: %s)' % (sock, declared))
    env = dict(node_env)
    env.update(_env(block, 'env'))
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
    if restart not in _RESTART_POLICIES:
        raise block.error('restart', 'expected one of: %s, got %r' % (', '.join(_RESTART_POLICIES), restart))
    max_restarts = _at_least(block, 'max_restarts', int, 10, 0)
    depends_on = _names(block, 'depends_on')
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
    return replace(spec, ready=ready)


def _bad_name(section: Config, name: Any, what: str) -> ConfigError:
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


def _check_cycles(instances: Config, specs: dict[str, InstanceSpec]) -> None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name):] + [name]
            hard = ['%s needs %s' % (a, s) for a, b in zip(cycle, cycle[1:]) if b not in specs[a].depends_on
                    for block, s in specs[a].implied if block == b]
            # the key of the first step: node.yml's depends_on, or the block (its service config's)
            key = '%s.depends_on' % name if cycle[1] in specs[name].depends_on else name
            raise instances.error(key, 'dependency cycle: %s%s' % (' → '.join(cycle), (
                ' (hard dependencies in service configs: %s)' % ', '.join(hard)) if hard else ''))
        if name in done:
            return
        for dep in specs[name].after:
            visit(dep, path + [name])
        done.add(name)

    for name in specs:
        visit(name, [])
