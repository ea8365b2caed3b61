"""The `reload:` key of a block: which source files restart it when they change
(fannode.node.autoreload watches them). Also what `fannode up --reload` and
`fannode instance --reload` watch when nothing says more."""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fannode.core.config import Config

INCLUDE = ('*.py',)
WATCH_KEYS = ('paths', 'include', 'exclude')


@dataclass(frozen=True)
class SourceWatch:
    paths: tuple[str, ...]            # absolute files or directories (recursive)
    include: tuple[str, ...] = INCLUDE  # a changed file counts when it matches one...
    exclude: tuple[str, ...] = ()       # ...and none of these

    def wants(self, path: str, base: str) -> bool:
        """A change of `path` restarts the block: it lies under one of the paths and its
        name (or its path relative to `base`, node.yml's directory) matches the globs."""
        if not any(path == p or path.startswith(p.rstrip(os.sep) + os.sep) for p in self.paths):
            return False
        names = (os.path.basename(path), os.path.relpath(path, base))
        return (any(fnmatch.fnmatch(n, g) for g in self.include for n in names)
                and not any(fnmatch.fnmatch(n, g) for g in self.exclude for n in names))


def default_paths(cwd: str, env: dict[str, str]) -> tuple[str, ...]:
    """Where a block's (or an instance's) Python code comes from: the entries of its
    PYTHONPATH when it has one, else its working directory."""
    entries = [os.path.abspath(os.path.join(cwd, p)) for p in env.get('PYTHONPATH', '').split(os.pathsep) if p]
    existing = [p for p in dict.fromkeys(entries) if os.path.exists(p)]
    return tuple(existing) or (os.path.abspath(cwd),)


def read_reload(block: Config, cwd: str, env: dict[str, str], base_dir: str) -> SourceWatch | None:
    """`reload: true`, `reload: PATH`, `reload: [PATHS]` or `reload: {paths, include, exclude}`;
    paths relative to node.yml's directory, as everywhere in node.yml."""
    if 'reload' not in block:
        return None
    value = block.require('reload', (bool, str, list, dict))
    if value is False:
        return None
    if value is True:
        return SourceWatch(default_paths(cwd, env))
    if isinstance(value, (str, list)):
        return SourceWatch(_paths(block, 'reload', base_dir))
    section = block.section('reload')
    section.check_keys(WATCH_KEYS)
    paths = _paths(section, 'paths', base_dir) if 'paths' in section else default_paths(cwd, env)
    return SourceWatch(paths, _globs(section, 'include') or INCLUDE, _globs(section, 'exclude'))


def _strings(owner: Config, key: str) -> list[tuple[str, str]]:
    """(key for errors, value) of a string or a list of strings."""
    value = owner.require(key, (str, list))
    if isinstance(value, str):
        return [(key, value)]
    items = [('%s.%d' % (key, i), owner.require('%s.%d' % (key, i), str)) for i in range(len(value))]
    if not items:
        raise owner.error(key, 'must not be empty')
    return items


def _paths(owner: Config, key: str, base_dir: str) -> tuple[str, ...]:
    paths = []
    for where, path in _strings(owner, key):
        full = os.path.abspath(os.path.join(base_dir, os.path.expanduser(path)))
        if not os.path.exists(full):
            raise owner.error(where, 'no such file or directory: %s' % full)
        paths.append(full)
    return tuple(dict.fromkeys(paths))


def _globs(owner: Config, key: str) -> tuple[str, ...]:
    if key not in owner:
        return ()
    return tuple(glob for _, glob in _strings(owner, key))


def listed(names: list[str], shown: int = 3) -> str:
    """`a, b, c and 2 more`: the first `shown` names and how many others."""
    if len(names) > shown:
        return '%s and %d more' % (', '.join(names[:shown]), len(names) - shown)
    return ', '.join(names)
