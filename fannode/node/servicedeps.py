"""Hard dependencies read from service configs, so `fannode up` orders blocks by them.

A block that runs `fannode instance --config FILE` serves the interfaces FILE names. When
FILE declares `dependencies: {hard: [Store]}` under one of its interfaces and
another block serves Store, the block starts once that one is ready, as if node.yml said
`depends_on`. The node reads the YAML only and never imports service code: dependencies
an Interface class declares are known at runtime only (the instance registers as not ready
until they appear, but the node does not order by them).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from fannode.core import dependencies
from fannode.core.config import Config, load_config
from fannode.exceptions import ConfigError


class Spec(Protocol):
    """What is read of a block (fannode.node.topology.InstanceSpec, which imports this)."""

    @property
    def cwd(self) -> str | None: ...
    @property
    def fannode_args(self) -> tuple[str, ...] | None: ...
    @property
    def is_service(self) -> bool: ...

    def env_dict(self) -> dict[str, str]: ...

KEY = dependencies.KEY


@dataclass(frozen=True)
class Declared:
    """What one service config says: the services it serves and those it needs."""

    path: str
    services: tuple[str, ...] = ()
    hard: tuple[str, ...] = ()
    soft: tuple[str, ...] = ()


def config_arg(args: tuple[str, ...]) -> str | None:
    """FILE in the arguments of `instance` (`--config FILE`, `-c FILE`, `--config=FILE`, `-cFILE`)."""
    for i, arg in enumerate(args):
        if arg in ('--config', '-c'):
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith('--config='):
            return arg[len('--config='):]
        if arg.startswith('-c') and not arg.startswith('--'):
            return arg[2:]
    return None


def read(path: str, env: Mapping[str, str] | None = None) -> Declared | None:
    """The declarations of one service config (`interfaces.NAME.dependencies`, read as the
    container reads them: fannode.core.dependencies); None when the file cannot be read or
    parsed (the instance says why when it starts). A `dependencies:` that is not a valid
    declaration is a one-line ConfigError naming the file, the line and the key."""
    try:
        config = load_config(path, env)
    except ConfigError:
        return None
    interfaces = config.get('interfaces')
    if not isinstance(interfaces, Config):
        return None  # the instance says what is wrong with it
    each: dict[str, dependencies.Dependencies] = {}
    for name in interfaces:
        section = interfaces.get(name)
        each[str(name)] = _declared(section) if isinstance(section, Config) else dependencies.Dependencies()
    found = dependencies.merged(each)
    return Declared(path, tuple(each), found.hard, found.soft)


def _declared(section: Config) -> dependencies.Dependencies:
    if KEY not in section:
        return dependencies.Dependencies()  # the class may declare some: known at runtime only
    raw = section.get(KEY)
    try:
        return dependencies.parse(raw.to_dict() if isinstance(raw, Config) else raw)
    except dependencies.Invalid as e:
        raise section.error('%s.%s' % (KEY, e.key) if e.key else KEY, e.message) from None


def service_config(spec: Spec, base_dir: str) -> str | None:
    """The absolute path of the config a service block runs, or None (not a service, no --config)."""
    args = spec.fannode_args
    if not spec.is_service or args is None:
        return None
    name = config_arg(args[1:])
    if not name:
        return None
    return os.path.normpath(os.path.join(spec.cwd or base_dir, os.path.expanduser(name)))


def implied(specs: Mapping[str, Spec], base_dir: str,
            env: Mapping[str, str] | None = None) -> dict[str, tuple[tuple[str, str], ...]]:
    """Block → ((block it waits for, the service that block serves), ...): the hard
    dependencies its service config declares on services other blocks run. A service no
    block runs is not waited for (it may run elsewhere; the instance is not ready without it)."""
    declared: dict[str, Declared] = {}
    for name, spec in specs.items():
        path = service_config(spec, base_dir)
        if path is not None:
            found = read(path, {**(os.environ if env is None else env), **spec.env_dict()})
            if found is not None:
                declared[name] = found
    providers: dict[str, list[str]] = {}
    for name, found in declared.items():
        for service in found.services:
            providers.setdefault(service, []).append(name)
    waits: dict[str, tuple[tuple[str, str], ...]] = {}
    for name, found in declared.items():
        pairs = [(block, service) for service in found.hard
                 for block in providers.get(service, ()) if block != name]
        if pairs:
            waits[name] = tuple(dict.fromkeys(pairs))
    return waits


def describe(block: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """'orders starts after store (hard dependency Store)', for `fannode up --check`."""
    blocks = ', '.join(dict.fromkeys(b for b, _ in pairs))
    services = ', '.join(dict.fromkeys(s for _, s in pairs))
    return '%s starts after %s (hard dependenc%s %s)' % (
        block, blocks, 'y' if ',' not in services else 'ies', services)
