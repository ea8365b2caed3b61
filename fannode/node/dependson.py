"""node.yml's `depends_on:` with conditions, docker compose's form:

    depends_on:
      migrate: {condition: completed_successfully}
      db: {condition: healthy, restart: true}

A plain list (`depends_on: [db]`) keeps meaning `condition: ready`. What each condition
waits for at start, and `restart: true`, is fannode.node.conditions'.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fannode.core.config import Config

CONDITIONS = ('started', 'ready', 'healthy', 'completed_successfully')
DEFAULT = 'ready'
KEYS = ('condition', 'restart')

Condition = tuple[str, str, bool]  # (block it depends on, condition, restart with it)


def read(block: Config, name: str, names: list[str]) -> tuple[Condition, ...] | None:
    """The mapping form of `depends_on`; None when it is a list or a name (read as before)."""
    if not isinstance(block.get('depends_on'), Mapping):
        return None
    section = block.section('depends_on')
    conditions = []
    for dep in section:
        if dep == name:
            raise section.error(dep, 'an instance cannot depend on itself')
        if dep not in names:
            raise section.error(dep, "unknown instance '%s' (instances: %s)" % (dep, ', '.join(names)))
        value = section.get(dep)
        if value is None:  # `db:` alone
            conditions.append((dep, DEFAULT, False))
            continue
        if not isinstance(value, Mapping):
            raise section.error(dep, 'expected {condition: %s, restart: true|false}, got %r'
                                % ('|'.join(CONDITIONS), value))
        options = section.section(dep)
        options.check_keys(KEYS)
        condition = options.require('condition', str, DEFAULT)
        if condition not in CONDITIONS:
            raise options.error('condition', 'expected one of: %s, got %r' % (', '.join(CONDITIONS), condition))
        conditions.append((str(dep), condition, bool(options.require('restart', bool, False))))
    return tuple(conditions)


def plain(depends_on: tuple[str, ...]) -> tuple[Condition, ...]:
    return tuple((dep, DEFAULT, False) for dep in depends_on)


def check(instances: Config, specs: Mapping[str, Any]) -> None:
    """Once every block is read: a block that restarts `always` never completes."""
    for name, spec in specs.items():
        for dep, condition, _ in spec.conditions:
            if condition == 'completed_successfully' and specs[dep].restart == 'always':
                raise instances.error('%s.depends_on.%s.condition' % (name, dep), (
                    "%s has restart: always, so it never completes; give it restart: never "
                    "(or on-failure) to wait for it with completed_successfully") % dep)
