"""node.yml, the topology of `fannode up`: what to run, checked up front (what changed
between two versions of it, for live edits, is fannode.node.changes).

Every error is a one-line ConfigError ``node.yml:LINE: key.path: message``.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from fannode.backends import schemes
from fannode.core.config import Config, load_config, loads_config
from fannode.exceptions import ConfigError
from fannode.node import capacity
from fannode.node import envfiles
from fannode.node import logconf
from fannode.node import procfile
from fannode.node import servicedeps
from fannode.node.dependson import check as check_conditions
from fannode.node.blockread import bad_name, read_block, read_env
from fannode.node.logconf import LogSpec
from fannode.node.metricsconf import MetricsSpec, read_metrics
from fannode.node.readycheck import ReadyCheck
from fannode.node.spec import NAME, NAME_MAX, InstanceSpec, SocketSpec
from fannode.settings import DEFAULT_HUB

__all__ = ['HUB_BLOCK', 'NAME_MAX', 'InstanceSpec', 'ReadyCheck', 'SocketSpec', 'Topology', 'load', 'loads']

HUB_BLOCK = 'hub'  # reserved instance name when the node hosts the hub
_TOP_KEYS = ('registry', 'events', 'env', 'sockets', 'instances', 'logs', 'metrics', 'env_file')
_LOCAL_HOSTS = ('127.0.0.1', 'localhost')


@dataclass(frozen=True)
class Topology:
    path: str
    registry: str
    events: str
    env: tuple[tuple[str, str], ...]
    sockets: dict[str, SocketSpec] = field(compare=True)
    instances: dict[str, InstanceSpec] = field(compare=True)
    logs: LogSpec | None = None          # top-level `logs:` (each block has its own)
    metrics: MetricsSpec | None = None   # where /metrics is served (fannode.node.prometheus)

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
    base_dir = os.path.dirname(os.path.abspath(path))
    project = envfiles.project(base_dir, os.environ if env is None else env)  # .env, --env-file
    env = envfiles.interpolation(os.environ if env is None else env, project[0])
    if procfile.is_procfile(path):  # the same topology, from `name: command` lines
        config, places = procfile.read(path, path)
        ports = procfile.ports(places, procfile.base_port(env, path), path)
        topology = _build(config, os.path.abspath(path), base_dir, env, project)
        return replace(topology, instances={n: replace(s, port=ports[n]) for n, s in topology.instances.items()})
    config = load_config(path, env)  # messages name the path as the user gave it
    return _build(config, os.path.abspath(path), base_dir, env, project)


def loads(text: str, source: str = 'node.yml', base_dir: str = '.',
          env: Mapping[str, str] | None = None) -> Topology:
    config = loads_config(text, source, env)
    return _build(config, os.path.abspath(os.path.join(base_dir, source)), os.path.abspath(base_dir), env)


def _build(config: Config, path: str, base_dir: str, env: Mapping[str, str] | None = None,
           project: envfiles.Layers = ({}, {})) -> Topology:
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
    # .env and --env-file < env_file < env, with where each variable comes from (for --show-env)
    node_env, node_from = envfiles.layer(config, project, read_env(config, 'env'), base_dir, 'env')
    sockets = _sockets(config)
    if 'instances' not in config:
        raise config.error('instances', 'missing (an empty cluster is `instances: {}`)')
    instances = config.section('instances')
    runs_hub = _is_local_hub(registry) or _is_local_hub(events) or _runs_log_hub(registry, events)
    names = []
    for name in instances:
        if not isinstance(name, str) or not NAME.fullmatch(name) or len(name) > NAME_MAX:
            raise bad_name(instances, name, 'instance')
        if name == HUB_BLOCK and runs_hub:
            raise instances.error(name, "'%s' is reserved for the hub the node runs" % HUB_BLOCK)
        names.append(name)
    specs = {name: read_block(instances, name, names, node_env, sockets, base_dir, node_from) for name in names}
    logs = logconf.read_top(config, base_dir)
    for name in names:
        specs[name] = replace(specs[name], logs=logconf.for_block(instances, name, logs, base_dir))
    capacity.check_topology(instances, {name: spec.numprocesses for name, spec in specs.items()})
    for name, pairs in servicedeps.implied(specs, base_dir, env).items():
        specs[name] = replace(specs[name], implied=pairs)
    _check_cycles(instances, specs)
    check_conditions(instances, specs)
    return Topology(path, registry, events, tuple(sorted(node_env.items())), sockets, specs,
                    logs, read_metrics(config))


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


def _sockets(config: Config) -> dict[str, SocketSpec]:
    section = config.section('sockets')
    sockets: dict[str, SocketSpec] = {}
    seen: dict[tuple[str, int], str] = {}
    for name in section:
        if not isinstance(name, str) or not NAME.fullmatch(name) or len(name) > NAME_MAX:
            raise bad_name(section, name, 'socket')
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

