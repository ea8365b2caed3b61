"""cgroup v2 for `limits:`, when the node may make cgroups of its own.

The node can limit its children with cgroups only when its own cgroup (from
/proc/self/cgroup, under the cgroup2 mount) is writable and offers the memory and pids
controllers to sub-cgroups. cgroup v2 lets controllers reach a child only when its parent
holds no process itself, so the node moves itself and what it started so far (the
watchdog, the hub) into a leaf (`node`) first; when the
cgroup holds other processes too (a login shell's), that fails and the node falls back to
rlimits and its RSS watchdog (fannode.node.limitwatch). Each limited process gets a
cgroup of its own (`NAME.PID`): its memory.max, cpu.max, pids.max and memory.oom.group.
"""
from __future__ import annotations

import logging
import os

import psutil

from fannode.node.resources import Limits

CONTROLLERS = ('memory', 'pids', 'cpu')
CPU_PERIOD = 100_000  # µs, cpu.max's usual period

log = logging.getLogger(__name__)


def own_cgroup(mountinfo: str = '/proc/self/mountinfo', cgroup: str = '/proc/self/cgroup') -> str | None:
    """The directory of this process' cgroup v2, or None (cgroup v1 only, or not Linux)."""
    try:
        with open(cgroup) as f:
            path = next((line.strip()[3:] for line in f if line.startswith('0::')), None)
        with open(mountinfo) as f:
            mounts = [line.split() for line in f]
    except OSError:
        return None
    for fields in mounts:
        # ... mount point is field 4; the filesystem type follows the ' - ' separator
        if '-' in fields and fields[fields.index('-') + 1] == 'cgroup2' and path is not None:
            return os.path.join(fields[4], path.lstrip('/'))
    return None


def ours() -> list[int]:
    """This process and its descendants."""
    me = psutil.Process()
    found = [me.pid]
    for child in me.children(recursive=True):
        found.append(child.pid)
    return found


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    with open(path, 'w') as f:
        f.write(text)


class Cgroups:
    """The node's cgroup, made ready for children; `usable` says whether it worked."""

    def __init__(self, root: str | None):
        self.root = root
        self.usable = False
        self.why = 'no cgroup v2 here'
        self.leaf: str | None = None   # where the node moved itself
        self.enabled: list[str] = []   # controllers the node enabled for its children
        if root is not None:
            self.usable = self._prepare(root)

    def _prepare(self, root: str) -> bool:
        try:
            offered = _read(os.path.join(root, 'cgroup.controllers')).split()
        except OSError as e:
            self.why = 'cannot read %s: %s' % (root, e.strerror)
            return False
        missing = [c for c in CONTROLLERS[:2] if c not in offered]
        if missing:
            self.why = 'the cgroup %s offers no %s controller' % (root, ', '.join(missing))
            return False
        if not os.access(root, os.W_OK):
            self.why = 'the cgroup %s is not writable (not delegated)' % root
            return False
        leaf = os.path.join(root, 'node')
        try:
            enabled = _read(os.path.join(root, 'cgroup.subtree_control')).split()
            # cgroup v2 lets a cgroup with controllers for its children hold no process itself:
            # the node and what it started so far (the watchdog, the hub) go into a leaf first
            os.makedirs(leaf, exist_ok=True)
            self.leaf = leaf
            for pid in ours():
                _write(os.path.join(leaf, 'cgroup.procs'), str(pid))
            missing = [c for c in CONTROLLERS if c in offered and c not in enabled]
            if missing:
                _write(os.path.join(root, 'cgroup.subtree_control'), ' '.join('+' + c for c in missing))
                self.enabled = missing
        except OSError as e:  # EBUSY: other processes share the cgroup
            self.why = 'cannot enable controllers in %s: %s' % (root, e.strerror)
            self._undo(root, leaf)
            return False
        return True

    def _undo(self, root: str, leaf: str) -> None:
        try:
            if self.enabled:  # the root may hold processes again only without them
                _write(os.path.join(root, 'cgroup.subtree_control'), ' '.join('-' + c for c in self.enabled))
                self.enabled = []
            for pid in ours():
                _write(os.path.join(root, 'cgroup.procs'), str(pid))
            os.rmdir(leaf)
            self.leaf = None
        except OSError:
            pass

    def close(self) -> None:
        """The node stops: it leaves its leaf, as it found its cgroup."""
        if self.usable and self.root is not None and self.leaf is not None:
            self._undo(self.root, self.leaf)
        self.usable = False

    def place(self, name: str, pid: int, limits: Limits) -> str | None:
        """Move `pid` into a new cgroup with `limits`; its directory, or None."""
        if not self.usable or self.root is None:
            return None
        path = os.path.join(self.root, '%s.%d' % (name, pid))
        try:
            os.makedirs(path, exist_ok=True)
            if limits.memory is not None:
                _write(os.path.join(path, 'memory.max'), str(limits.memory))
                if os.path.exists(os.path.join(path, 'memory.swap.max')):  # swapping is no way out
                    _write(os.path.join(path, 'memory.swap.max'), '0')
                _write(os.path.join(path, 'memory.oom.group'), '1')  # the whole group goes, as the watchdog does
            if limits.pids is not None:
                _write(os.path.join(path, 'pids.max'), str(limits.pids))
            if limits.cpu is not None and os.path.exists(os.path.join(path, 'cpu.max')):
                _write(os.path.join(path, 'cpu.max'), '%d %d' % (max(1000, int(limits.cpu * CPU_PERIOD)), CPU_PERIOD))
            _write(os.path.join(path, 'cgroup.procs'), str(pid))
        except OSError as e:
            log.warning('cannot put pid %d in cgroup %s: %s', pid, path, e.strerror)
            return None
        return path


def oom_kills(path: str) -> int:
    """memory.events' oom_kill: processes the kernel killed for the memory limit."""
    try:
        for line in _read(os.path.join(path, 'memory.events')).splitlines():
            key, _, value = line.partition(' ')
            if key == 'oom_kill' and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def remove(path: str) -> bool:
    """rmdir the cgroup of a process that is gone; False while something is left in it."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
