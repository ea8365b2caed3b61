"""Restarting blocks when their Python sources change (`reload:` in node.yml, or
`fannode up --reload` for every block that runs Python): one watch over every path the
blocks name (watchfiles: inotify and friends, from a thread), changes debounced, then
each block whose paths hold a change is rolled out as `fannode rollout NAME` does: a new
process ready before an old one stops, so the block keeps serving throughout, and new code
that does not come up leaves the old processes running. (Not `fannode reload`, which
re-reads node.yml.)"""
from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Protocol

from fannode.exceptions import UsageError
from fannode.node.block import Block
from fannode.node.output import Printer
from fannode.node.loopwait import until
from fannode.node.reloadkey import SourceWatch, default_paths, listed
from fannode.node.rollout import Rollout, Rollouts
from fannode.node.rolloutspec import PER_PROCESS
from fannode.node.topology import HUB_BLOCK

DEBOUNCE_MS = 300  # changes this close together are one restart: an editor saving several files
RESCAN = 1.0       # how often the set of watched paths is looked at again (edits of node.yml)
SHOWN = 3          # changed files named in the "reloading" line
RUST_TIMEOUT_MS = 500  # the watch thread looks up this often: a stopping node waits no longer for it


class Reloading(Protocol):
    """What autoreload uses of the node (fannode.node.supervisor.Node)."""

    blocks: dict[str, Block]
    directory: str
    printer: Printer
    reload_all: bool  # fannode up --reload
    rollouts: Rollouts
    stopping: bool

    def trouble(self, what: str, e: Exception) -> None: ...


def watch_of(node: Reloading, block: Block) -> SourceWatch | None:
    """What restarts `block`: its `reload:` key; with --reload, where its code comes from
    when it runs Python (fannode or python commands, never the hub)."""
    spec = block.spec
    if block.name == HUB_BLOCK:
        return None
    if spec.reload is not None:
        return spec.reload
    runs_python = spec.runs_fannode or os.path.basename(spec.argv[0]).startswith('python')
    if node.reload_all and runs_python:
        return SourceWatch(default_paths(spec.cwd or node.directory, spec.env_dict()))
    return None


def roots(node: Reloading) -> tuple[str, ...]:
    """Every watched directory, without those inside another (watched recursively already).
    A file is watched through its directory: an editor saving it puts a new file in its
    place, which a watch on the old one would miss."""
    paths = sorted({p if os.path.isdir(p) else os.path.dirname(p)
                    for b in list(node.blocks.values()) for p in getattr(watch_of(node, b), 'paths', ())})
    kept: list[str] = []
    for path in paths:
        if not any(path.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept.append(path)
    return tuple(kept)


async def watch(node: Reloading) -> None:
    """The node's task: watch the blocks' sources while it runs."""
    reloader = Reloader(node)
    try:
        while True:
            watched = roots(node)
            if not watched:
                await asyncio.sleep(RESCAN)
                continue
            try:
                await reloader.watch(watched)
            except Exception as e:  # a path removed meanwhile, the inotify limit: said once, tried again
                node.trouble('watching sources for reload', e)
                await asyncio.sleep(RESCAN)
    finally:  # the node is stopping: no restart starts anything more
        for task in reloader.rolling.values():
            task.cancel()


class Reloader:
    def __init__(self, node: Reloading):
        self.node = node
        self.rolling: dict[str, asyncio.Task[None]] = {}
        self.again: dict[str, list[str]] = {}  # changes that came during a block's restart

    async def watch(self, watched: tuple[str, ...]) -> None:
        """Until the set of watched paths changes (a block added, removed, edited)."""
        from watchfiles import DefaultFilter, awatch
        stop = asyncio.Event()
        rescan = asyncio.ensure_future(self.until_changed(watched, stop))
        try:
            async for changes in awatch(*watched, watch_filter=DefaultFilter(), step=DEBOUNCE_MS,
                                        stop_event=stop, rust_timeout=RUST_TIMEOUT_MS):
                self.changed(sorted({path for _, path in changes}))
        finally:
            rescan.cancel()

    async def until_changed(self, watched: tuple[str, ...], stop: asyncio.Event) -> None:
        while roots(self.node) == watched:
            await asyncio.sleep(RESCAN)
        stop.set()

    def changed(self, paths: list[str]) -> None:
        for name, block in list(self.node.blocks.items()):
            if '@' in name:  # a rollout's new processes (NAME@next): the block is NAME
                continue
            watch = watch_of(self.node, block)
            files = [p for p in paths if watch is not None and watch.wants(p, self.node.directory)]
            if not files:
                continue
            task = self.rolling.get(name)
            if task is not None and not task.done():
                self.again.setdefault(name, []).extend(files)  # once this restart is over
                continue
            self.rolling[name] = asyncio.ensure_future(self.restart(name, files))

    async def restart(self, name: str, files: list[str]) -> None:
        while True:
            try:
                await self.roll(name, files)
            except Exception as e:
                self.node.trouble('reloading %s' % name, e)
            files = self.again.pop(name, [])
            if not files:
                return

    async def roll(self, name: str, files: list[str]) -> None:
        node = self.node
        block = node.blocks.get(name)
        if block is None or block.watcher is None or node.stopping:
            return
        node.printer.event('%s: reloading (%s changed)' % (name, self.shown(files)), 'cyan')
        behind = any(r.name == name for r in node.rollouts.running)  # replaced again once it is over
        if not behind:
            if block.failed or block.gone:
                block.scale(block.desired)  # new code is a fresh start, as a new count is
            if not block.live:
                return  # what starts now runs the new code
        rollout = self.roll_out(block)
        why = rollout if isinstance(rollout, str) else await outcome(rollout)
        if node.stopping:
            return
        if why:
            node.printer.error('%s: reload failed: %s; the processes running keep the code they started with'
                               % (name, why))
        else:
            count = 0 if isinstance(rollout, str) else rollout.done
            node.printer.event('%s: reloaded (%d %s replaced)' % (
                name, count, 'process' if count == 1 else 'processes'), 'cyan')

    def roll_out(self, block: Block) -> Rollout | str:
        """`fannode rollout NAME` (fannode.node.rollout), after any rollout of the block
        running now: new processes started beside the old ones, each ready before an old
        one stops; readiness that cannot tell a new process from an old one, or a Procfile
        PORT, replaces them in turn. On failure the old ones stay. The rollout, or why it
        could not begin."""
        in_turn = block.spec.ready.kind not in PER_PROCESS
        try:
            return self.node.rollouts.begin(block.name, dataclasses.replace(block.spec, numprocesses=block.desired),
                                            'rollout', in_turn)
        except UsageError as e:
            return str(e)

    def shown(self, files: list[str]) -> str:
        names = []
        for path in dict.fromkeys(files):
            rel = os.path.relpath(path, self.node.directory)
            names.append(path if rel.startswith('..') else rel)
        return listed(names, SHOWN)


async def outcome(rollout: Rollout) -> str:
    """Once it is over: why it failed, or ''."""
    await until(lambda: rollout.state not in ('waiting', 'running'), None)
    return '' if rollout.state == 'done' else rollout.error or rollout.state
