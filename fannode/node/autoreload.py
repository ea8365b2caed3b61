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
import time
from typing import Any, Protocol

from fannode.exceptions import UsageError
from fannode.node.block import Block
from fannode.node.output import Printer
from fannode.node.reloadkey import SourceWatch, default_paths
from fannode.node.rollout import Rollouts
from fannode.node.rolloutspec import PER_PROCESS
from fannode.node.topology import HUB_BLOCK

DEBOUNCE_MS = 300  # changes this close together are one restart: an editor saving several files
RESCAN = 1.0       # how often the set of watched paths is looked at again (edits of node.yml)
POLL = 0.05        # how often a rolling restart looks whether the new process is ready
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
        if block.failed or block.gone:
            block.scale(block.desired)  # new code is a fresh start, as a new count is
        count = len(block.live)
        if not count:
            return  # what starts now runs the new code
        if block.spec.ready.kind in PER_PROCESS and block.desired >= 1:
            why = await self.roll_out(block)
        else:
            why = await self.one_by_one(block)
        if node.stopping:
            return
        if why:
            node.printer.error('%s: reload failed: %s; the processes running keep the code they started with'
                               % (name, why))
        else:
            node.printer.event('%s: reloaded (%d %s replaced)' % (
                name, count, 'process' if count == 1 else 'processes'), 'cyan')

    async def roll_out(self, block: Block) -> str:
        """`fannode rollout NAME` (fannode.node.rollout): new processes started beside the
        old ones, each ready before an old one stops; on failure the old ones stay. Why it
        failed, or ''."""
        try:
            rollout = self.node.rollouts.begin(block.name, dataclasses.replace(block.spec, numprocesses=block.desired),
                                               'rollout')
        except UsageError as e:
            return str(e)
        while rollout.state in ('waiting', 'running'):
            await asyncio.sleep(POLL)
        return '' if rollout.state == 'done' else rollout.error or rollout.state

    async def one_by_one(self, block: Block) -> str:
        """Readiness that cannot tell a new process from an old one (a tcp or http check,
        or none): each process stopped and replaced in turn, the next once one is ready."""
        for pid in sorted(block.live, key=lambda p: block.index.get(p, 0)):
            if self.node.stopping:
                return 'the node is stopping'
            if self.node.blocks.get(block.name) is not block or pid not in block.live:
                continue  # removed, replaced or gone meanwhile
            before = set(block.index)
            block.stop_process(pid)
            block.sync()  # the replacement starts beside the one stopping
            if not await self.replaced(block, before):
                return 'no new process ready within %gs' % block.spec.ready.timeout
        return ''

    async def replaced(self, block: Block, before: set[int]) -> bool:
        """A process started after `before` is ready (False: timed out, failed or removed)."""
        deadline = time.monotonic() + block.spec.ready.timeout
        while time.monotonic() < deadline:
            if self.node.blocks.get(block.name) is not block or block.failed:
                return False
            if (block.ready_pids & block.live) - before:
                return True
            await asyncio.sleep(POLL)
        return False

    def shown(self, files: list[str]) -> str:
        names: list[Any] = []
        for path in dict.fromkeys(files):
            rel = os.path.relpath(path, self.node.directory)
            names.append(path if rel.startswith('..') else rel)
        if len(names) > SHOWN:
            return '%s and %d more' % (', '.join(names[:SHOWN]), len(names) - SHOWN)
        return ', '.join(names)
