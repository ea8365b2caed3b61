"""Live edits of node.yml: the node watches the file and, when it is saved, applies only
what changed (fannode.node.changes). A broken file changes nothing; changes to the node
itself (registry, events, sockets in use) are reported and wait for a restart."""
from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any, Protocol

from fannode.exceptions import ConfigError, UsageError
from fannode.node import conditions
from fannode.node.changes import diff
from fannode.node.topology import load

from fannode.node.block import Block, NodeView
from fannode.node.output import Printer
from fannode.node.rollout import Rollouts
from fannode.node.topology import InstanceSpec, Topology


class Edited(NodeView, Protocol):
    """What applying an edit uses of the node (fannode.node.supervisor.Node)."""

    topology: Topology
    printer: Printer
    blocks: dict[str, Block]
    changing: asyncio.Lock  # held while a change is applied
    rollouts: Rollouts

    async def add(self, spec: InstanceSpec) -> None: ...

    async def remove(self, name: str) -> None: ...

    async def replace(self, name: str, spec: InstanceSpec) -> None: ...

WATCH = 0.25  # seconds between looks at the file: an edit applies within this


async def watch(node: Edited) -> None:
    path = node.topology.path
    seen = _stamp(path)
    while True:
        await asyncio.sleep(WATCH)
        stamp = _stamp(path)
        if stamp != seen:
            seen = stamp
            try:
                async with node.changing:
                    await reload(node)
            except Exception as e:  # applying it failed half-way: said, and the next save is read
                node.printer.error('applying node.yml failed: %s: %s' % (type(e).__name__, e))


def _stamp(path: str) -> tuple[int, ...]:
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return st.st_mtime_ns, st.st_size, st.st_ino


async def reload(node: Edited) -> dict[str, Any]:
    """Re-read node.yml and apply only the difference; a broken file changes nothing."""
    path = node.topology.path
    try:
        new = load(path)
    except ConfigError as e:
        node.printer.error('%s; still running the previous topology' % e)
        return {'applied': [], 'error': str(e)}
    except OSError as e:
        node.printer.error('cannot read %s: %s; still running the previous topology' % (path, e.strerror))
        return {'applied': [], 'error': str(e)}
    changes = diff(node.topology, new)
    for reason in changes.node:
        node.printer.error('%s: not applied; restart `fannode up` for it' % reason)
    if changes.empty:
        return {'applied': [], 'ignored': changes.node}
    applied = changes.describe()
    for line in applied:
        node.printer.event('%s changed: %s' % (os.path.basename(path), line), 'cyan')
    old = node.topology
    node.topology = new
    if changes.node:  # keep what was not applied as it runs
        node.topology = dataclasses.replace(new, registry=old.registry, events=old.events, metrics=old.metrics,
                                            sockets={**new.sockets, **old.sockets})
    for name in changes.removed:
        await node.remove(name)
    for name in changes.restarted + changes.rolling:
        if conditions.waiting(node, name):  # not started yet: it starts as edited, when due
            conditions.swap(node, name, Block(node, new.instances[name]))
    for name in changes.restarted:
        if not conditions.waiting(node, name):
            await node.replace(name, new.instances[name])
    for name in [n for n in changes.rolling if not conditions.waiting(node, n)]:  # once this edit is applied
        try:
            node.rollouts.begin(name, new.instances[name], 'node.yml')
        except UsageError as e:
            node.printer.error('%s; restarting it instead' % e)
            await node.replace(name, new.instances[name])
    for name in changes.added:
        await node.add(new.instances[name])
    for name, count in changes.scaled.items():
        block = node.blocks[name]
        block.spec = new.instances[name]
        block.scale(count)
    for name in changes.updated:
        node.blocks[name].spec = new.instances[name]
    return {'applied': applied, 'ignored': changes.node}
