"""node.yml's `logs:` (top level and per block): which blocks write their output to files,
where, and how the files rotate. Read here, written by fannode.node.logfiles."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from fannode.core.config import Config
from fannode.core.limits import KIB, MIB
from fannode.node import resources

KEYS = ('dir', 'max_size', 'backups')
MAX_BACKUPS = 100


@dataclass(frozen=True)
class LogSpec:
    dir: str                 # absolute
    max_size: int = 10 * MIB  # bytes a file reaches before it is rotated
    backups: int = 5          # rotated files kept: NAME.log.1 (newest) … NAME.log.N


def read_top(config: Config, base_dir: str) -> LogSpec | None:
    """Top-level `logs:`: absent or false, no files (unless a block asks); true, the defaults."""
    return _read(config, 'logs', None, base_dir) if 'logs' in config else None


def read_block(block: Config, top: LogSpec | None, base_dir: str) -> LogSpec | None:
    """A block's `logs:` wins over the top level's, key by key; `logs: false` turns it off."""
    return _read(block, 'logs', top, base_dir) if 'logs' in block else top


def _read(owner: Config, key: str, base: LogSpec | None, base_dir: str) -> LogSpec | None:
    value = owner.require(key, (bool, dict, type(None)))
    if value is False:
        return None
    base = base or LogSpec(os.path.join(base_dir, 'logs'))
    if value is True or value is None:
        problem = unwritable(base.dir)
        if problem:
            raise owner.error(key, problem)
        return base
    section = owner.section(key)
    section.check_keys(KEYS)
    directory = base.dir
    if 'dir' in section:
        text = section.require('dir', str)
        if not text:
            raise section.error('dir', 'must not be empty')
        directory = os.path.abspath(os.path.join(base_dir, os.path.expanduser(text)))
    problem = unwritable(directory)
    if problem:
        raise section.error('dir' if 'dir' in section else '', problem)
    max_size = parse_size(section, 'max_size', base.max_size)
    backups = section.require('backups', int, base.backups)
    if not 0 <= backups <= MAX_BACKUPS:
        raise section.error('backups', 'expected a whole number 0..%d, got %r' % (MAX_BACKUPS, backups))
    return LogSpec(directory, max_size, backups)


def parse_size(section: Config, key: str, default: int) -> int:
    """`10MB`, `512 KiB`, `1g` or a number of bytes (as `limits: {memory: ...}` reads them)."""
    value: Any = section.require(key, (int, str), default)
    size = resources.parse_size(value)
    if size is None:
        raise section.error(key, 'expected a size like 10MB, 512KB or a number of bytes, got %r' % (value,))
    if size < KIB:
        raise section.error(key, 'expected at least 1KB, got %d bytes' % size)
    return size


def unwritable(directory: str) -> str | None:
    """Why the node could not write log files in `directory` (made if missing), or None.
    Checked when node.yml is read, so the mistake is a line naming the key, not a
    warning once the node runs."""
    path = directory
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    if not os.path.isdir(path):
        return 'cannot make the directory %s: %s is not a directory' % (directory, path)
    if not os.access(path, os.W_OK | os.X_OK):
        return 'cannot write to %s: permission denied' % path
    return None


def for_block(instances: Config, name: str, top: LogSpec | None, base_dir: str) -> LogSpec | None:
    """The logs of block `name` (`greeting: fannode ...`, a command alone, has the top level's)."""
    if not isinstance(instances.get(name), Config):
        return top
    return read_block(instances.section(name), top, base_dir)
