"""node.yml, the topology of `fannode up`: what to run, checked up front (what changed
between two versions of it, for live edits, is fannode.node.changes).

Every error is a one-line ConfigError ``node.yml:LINE: key.path: message``.
"""
from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from fannode.backends import schemes
from fannode.core.config import Config, load_config, loads_config
from fannode.settings import DEFAULT_HUB

HUB_BLOCK = 'hub'  # reserved instance name when the node hosts the hub

_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')
_TOP_KEYS = ('registry', 'events', 'env', 'sockets', 'instances')
_BLOCK_KEYS = ('command', 'numprocesses', 'sockets', 'env', 'cwd', 'stop_timeout', 'restart',
               'max_restarts', 'depends_on', 'ready')
_RESTART_POLICIES = ('always', 'on-failure', 'never')
_READY_KINDS = ('tcp', 'http', 'log', 'registered')
_LOCAL_HOSTS = ('127.0.0.1', 'localhost')


@dataclass(frozen=True)
class SocketSpec:
    name: str
    host: str = '0.0.0.0'
    port: int = 0


@dataclass(frozen=True)
class ReadyCheck:
    kind: str  # 'registered' | 'tcp' | 'http' | 'log' | 'started'
    target: str | int | None = None
    timeout: float = 60.0


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
    line: int = field(default=0, compare=False)  # moving a block in the file changes nothing

    @property
    def is_service(self) -> bool:
        """Runs `fannode instance ...` (or `python -m fannode[.cli] instance ...`)."""
        argv = self.argv
        if len(argv) >= 2 and os.path.basename(argv[0]) == 'fannode':
            return argv[1] == 'instance'
        return (len(argv) >= 4 and os.path.basename(argv[0]).startswith('python')
                and argv[1] == '-m' and argv[2] in ('fannode', 'fannode.cli') and argv[3] == 'instance')

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


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
                level[name] = 1 + max((depth(d) for d in self.instances[name].depends_on), default=-1)
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
    config = load_config(path, env)  # messages name the path as the user gave it
    return _build(config, os.path.abspath(path), os.path.dirname(os.path.abspath(path)))


def loads(text: str, source: str = 'node.yml', base_dir: str = '.',
          env: Mapping[str, str] | None = None) -> Topology:
    config = loads_config(text, source, env)
    return _build(config, os.path.abspath(os.path.join(base_dir, source)), os.path.abspath(base_dir))


def _build(config: Config, path: str, base_dir: str) -> Topology:
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
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise instances.error(name, 'bad instance name %r: expected letters, digits, _ . - '
                                        '(starting with a letter or digit)' % (name,))
        if name == HUB_BLOCK and runs_hub:
            raise instances.error(name, "'%s' is reserved for the hub the node runs" % HUB_BLOCK)
        names.append(name)
    specs = {name: _instance(instances, name, names, node_env, sockets, base_dir) for name in names}
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
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise section.error(name, 'bad socket name %r' % (name,))
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
    ready = _ready(block, used) if 'ready' in block else default
    return replace(spec, ready=ready)


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


def _ready(block: Config, used: tuple[str, ...]) -> ReadyCheck:
    ready = block.section('ready')
    ready.check_keys(_READY_KINDS + ('timeout',))
    kinds = [k for k in _READY_KINDS if k in ready]
    if len(kinds) != 1:
        raise block.error('ready', 'expected exactly one of: %s%s' % (
            ', '.join(_READY_KINDS), ' (got %s)' % ', '.join(kinds) if kinds else ''))
    kind = kinds[0]
    timeout = ready.require('timeout', float, 60.0)
    if not math.isfinite(timeout) or timeout <= 0:
        raise ready.error('timeout', 'expected a number of seconds > 0, got %r' % timeout)
    target: str | int | None
    if kind == 'registered':
        if ready.require(kind, bool) is not True:
            raise ready.error(kind, 'expected true (leave ready out to only wait for the start)')
        target = None
    elif kind == 'tcp':
        address: int | str = ready.require(kind, (int, str))
        port = address if isinstance(address, int) else 0
        if isinstance(address, str):
            host, _, digits = address.rpartition(':')
            port = int(digits) if host and digits.isdigit() else 0
        if not 1 <= port <= 65535:
            raise ready.error(kind, "expected a port 1..65535 or 'host:port', got %r" % (address,))
        target = address
    elif kind == 'http':
        url: str = ready.require(kind, str)
        # a '/path' stays as written: the block puts it on the port it actually bound
        if url.startswith('/') and not used:
            raise ready.error(kind, 'a path needs a socket on the instance (sockets: [...]) '
                                    'or a full http:// URL')
        if not url.startswith(('/', 'http://', 'https://')):
            raise ready.error(kind, "expected an http:// URL or a '/path', got %r" % url)
        target = url
    else:
        target = ready.require(kind, str)
        if not target:
            raise ready.error(kind, 'expected the text to wait for, got an empty string')
    return ReadyCheck(kind, target, timeout)


def _check_cycles(instances: Config, specs: dict[str, InstanceSpec]) -> None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name):] + [name]
            raise instances.error('%s.depends_on' % name, 'dependency cycle: %s' % ' → '.join(cycle))
        if name in done:
            return
        for dep in specs[name].depends_on:
            visit(dep, path + [name])
        done.add(name)

    for name in specs:
        visit(name, [])
