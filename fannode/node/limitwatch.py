"""Enforcing `limits:` (fannode.node.resources): cgroup v2 where the node may make
cgroups (fannode.node.cgroups), otherwise rlimits plus a watchdog.

- nofile: RLIMIT_NOFILE, set in the child before exec (circus' `rlimits`), either way.
- memory: the cgroup's memory.max; or the watchdog: the node sums the RSS of each limited
  process group every SAMPLE seconds and SIGKILLs a group over its limit. Not RLIMIT_AS,
  which counts address space, not memory, and breaks programs that map a lot and touch
  little (the JVM, Go, anything with big thread stacks).
- pids: the cgroup's pids.max; or the watchdog counts the group's processes and kills a
  group over the limit (after the fact: RLIMIT_NPROC counts the whole user, not the block).
- cpu: the cgroup's cpu.max only; without a cgroup it is not enforced, and ps says so.

A process killed for a limit is a failure like a crash (the restart policy and its backoff
apply), and its last exit says which limit: `killed: memory limit 64 MiB (rss 80 MiB)`.
"""
from __future__ import annotations

import asyncio
import os
import signal
from typing import Any, Protocol

from fannode.node import cgroups
from fannode.node.orphans import signal_group
from fannode.node.resources import Limits, mib
from fannode.node.spec import InstanceSpec


class Block(Protocol):
    """What limits use of a block (fannode.node.block.Block, which imports this module)."""

    name: str
    spec: InstanceSpec
    node: Any
    index: dict[int, int]
    notes: dict[int, str]  # pid → why the node killed it

    @property
    def live(self) -> set[int]: ...

PAGE = os.sysconf('SC_PAGE_SIZE')
SAMPLE = 0.25  # seconds between RSS samples: 50 MB/s overshoots a limit by about 12 MB

_cgroups: cgroups.Cgroups | None = None
_paths: dict[int, str] = {}  # pid → its cgroup
_leftover: set[str] = set()  # cgroups of processes gone, not empty yet


def node_cgroups() -> cgroups.Cgroups:
    """Looked at once, when the first limited process starts ($FANNODE_CGROUPS=0: never)."""
    global _cgroups
    if _cgroups is None:
        off = os.environ.get('FANNODE_CGROUPS', '1') == '0'
        _cgroups = cgroups.Cgroups(None if off else cgroups.own_cgroup())
        if off:
            _cgroups.why = '$FANNODE_CGROUPS=0'
    return _cgroups


def mechanism() -> str:
    """Without looking (status() runs in clients' tests too): the node looked at its first
    limited process."""
    return 'cgroup' if _cgroups is not None and _cgroups.usable else 'rlimit+watchdog'


def rlimits(limits: Limits) -> dict[str, int]:
    """For circus' Watcher(rlimits=...): set in the child before exec."""
    return {'nofile': limits.nofile} if limits.nofile is not None else {}


def status(limits: Limits) -> dict[str, Any] | None:
    """What `fannode ps --json` shows of a block's limits."""
    if limits.empty:
        return None
    shown = limits.describe()
    shown['mechanism'] = mechanism()
    if _cgroups is not None and not _cgroups.usable:
        shown['why'] = _cgroups.why  # why not cgroups
    if limits.cpu is not None and shown['mechanism'] != 'cgroup':
        shown['not_enforced'] = ['cpu']
    return shown


def placed(block: Block, pid: int) -> None:
    """A new process of `block` (after_spawn): into a cgroup of its own, when there are any."""
    limits = block.spec.limits
    if limits.empty or (limits.memory is None and limits.pids is None and limits.cpu is None):
        return
    if node_cgroups().usable:
        path = node_cgroups().place(block.name, pid, limits)
        if path is not None:
            _paths[pid] = path


def exit_reason(block: Block, pid: int) -> str | None:
    """Why `pid` died, when the node (or the kernel, for its cgroup) killed it for a limit.
    Called for every reaped process, stopped on purpose or not: its cgroup goes here."""
    note = block.notes.pop(pid, None)
    path = _paths.pop(pid, None)
    if path is not None:
        if note is None and block.spec.limits.memory is not None and cgroups.oom_kills(path):
            note = 'killed: memory limit %s (oom_kill in memory.events)' % mib(block.spec.limits.memory)
        if not cgroups.remove(path):
            _leftover.add(path)
    return note


def over(limits: Limits, rss: int, count: int) -> str | None:
    """The reason to kill a group with `rss` bytes in `count` processes, or None."""
    if limits.memory is not None and rss > limits.memory:
        return 'killed: memory limit %s (rss %s)' % (mib(limits.memory), mib(rss))
    if limits.pids is not None and count > limits.pids:
        return 'killed: pids limit %d (%d processes)' % (limits.pids, count)
    return None


def sample(pgids: set[int]) -> dict[int, tuple[int, int]]:
    """pgid → (RSS of its processes, how many), for the groups asked about (each the group
    of one of the node's processes, named by its pid: a group outlives no pid of its id).
    By group over /proc, not by parent: what a process started and left behind
    (`sh -c "worker &"`, a double fork) is init's child but still in the group. One read of
    /proc/PID/stat per process, no psutil object each."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry, 'rb') as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(b')') + 2:].split()  # the name may hold spaces and parens
        pgid = int(fields[2])
        if pgid in pgids and fields[0] != b'Z':  # a zombie holds no memory and runs nothing
            total, count = found.get(pgid, (0, 0))
            found[pgid] = (total + int(fields[21]) * PAGE, count + 1)
    return found


def check(blocks: list[Block]) -> None:
    watched = {pid: block for block in blocks for pid in block.live
               if block.spec.limits.memory is not None or block.spec.limits.pids is not None}
    if not watched:
        return
    for pid, (rss, count) in sample(set(watched)).items():
        block = watched[pid]
        reason = over(block.spec.limits, rss, count)
        if reason is None or pid in block.notes:
            continue
        block.notes[pid] = reason  # said when it is reaped: `web.1 killed: memory limit ...`
        signal_group(pid, signal.SIGKILL)  # no grace: it would only grow


async def watch(node: Any) -> None:
    """The node's watchdog loop, when cgroups do not do the job."""
    while True:
        try:
            for path in list(_leftover):
                if cgroups.remove(path):
                    _leftover.discard(path)
            limited = [b for b in node.blocks.values() if not b.spec.limits.empty]
            if limited and not node.stopping and not node_cgroups().usable:
                check(limited)
        except Exception as e:
            node.trouble('resource limits', e)
        await asyncio.sleep(SAMPLE)


def close() -> None:
    """At the end of the node (its processes reaped): the cgroups left, and the `node` leaf."""
    for path in list(_leftover) + list(_paths.values()):
        cgroups.remove(path)
    _leftover.clear()
    _paths.clear()
    global _cgroups
    if _cgroups is not None:
        _cgroups.close()
        _cgroups = None  # a next node in this process looks again
