"""Starting a block's processes: the circus watcher made from its spec, and the command
it runs (`fannode` is the node's own)."""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
from typing import TYPE_CHECKING, Any

from fannode.node import limitwatch

if TYPE_CHECKING:
    from circus.watcher import Watcher

    from fannode.node.block import Block
    from fannode.node.preload import Template


READY_POLL = 0.02  # seconds between looks at a template still importing
LEAVE_GRACE = 0.5  # seconds: callers see an instance leave (a push from the hub) well within it


def fannode_command() -> str:
    """The fannode next to this Python (the venv's), so node.yml can say `fannode ...`
    without the venv on PATH."""
    mine = os.path.join(os.path.dirname(sys.executable), 'fannode')
    return mine if os.access(mine, os.X_OK) else shutil.which('fannode') or 'fannode'



def process_env(block: Block) -> dict[str, str]:
    """What every process of the block gets on top of the node's environment."""
    spec = block.spec
    env = {'PYTHONUNBUFFERED': '1', 'FANNODE_REGISTRY': block.node.topology.registry,
           'FANNODE_EVENTS': block.node.topology.events, 'FANNODE_NODE': block.node.name,
           'FANNODE_BLOCK': block.name}
    if spec.runs_fannode:  # records for childlogs.parse; a fannode under `sh -c` writes lines
        env['FANNODE_LOG_FORMAT'] = 'json'
    env.update(spec.env_dict())
    if spec.version:  # the service container announces it over its config's `version:`
        env['FANNODE_VERSION'] = spec.version
    env.setdefault('FANNODE_LEAVE_GRACE', str(LEAVE_GRACE))  # a stopped instance serves this long after leaving discovery
    if spec.sockets:
        env['FANNODE_SOCKETS'] = ','.join(
            '%s=%d' % (name, block.node.arbiter.sockets[name].fileno()) for name in spec.sockets)
    return env


def template(block: Block) -> Template | None:
    """The block's template (fannode.node.preload), started if there is none; None when
    the block is not preloaded or this system cannot (not Linux)."""
    spec = block.spec
    if not spec.preloads or spec.fannode_args is None:
        return None
    fds = tuple(sorted(block.node.arbiter.sockets[name].fileno() for name in spec.sockets))
    return block.node.preloads.get(['fannode', *spec.fannode_args], {**os.environ, **process_env(block)},
                                   spec.cwd or block.node.directory, fds)


async def template_ready(block: Block) -> None:
    """Wait, without holding up the node's loop, for the block's template to finish its
    imports (READY_WAIT at most), so that its first processes are forked from it."""
    found = template(block)
    while found is not None and found.alive and found.poll() is None:
        await asyncio.sleep(READY_POLL)


def template_failed(block: Block, failed: Template) -> None:
    said = block.node.preloads.failed(block.name, failed)
    if said and not failed.problem.startswith('its service changed'):  # that one is expected
        block.node.printer.error('%s; started without preloading' % said)


def keep_templates(node: Any) -> None:
    """Let go of the templates no watcher and no waiting block will fork from."""
    keys = {w.key for w in node.arbiter.watchers if getattr(w, 'key', None)}
    for block in node.blocks.values():
        if block.watcher is None and block.spec.preloads:
            found = template(block)
            keys.add(found.key if found else None)
    node.preloads.keep(keys)


def make_watcher(block: Block) -> Watcher:
    from fannode.node.reapwatcher import ReapingWatcher as GroupWatcher  # a stopped process is not respawned
    spec = block.spec
    argv = list(spec.argv)
    argv[0] = executable(block)
    hooks = {name: (getattr(block, name), False)
             for name in ('before_spawn', 'after_spawn', 'before_signal', 'after_reap')}
    options: dict[str, Any] = dict(
        args=argv[1:], numprocesses=block.target, working_dir=spec.cwd or block.node.directory,
        env=process_env(block), copy_env=True, graceful_timeout=spec.stop_timeout,
        use_sockets=bool(spec.sockets), stdout_stream={'stream': block.out},
        stderr_stream={'stream': block.err}, hooks=hooks, max_retry=1, loop=block.node.loop,
        rlimits=limitwatch.rlimits(spec.limits))  # nofile (fannode.node.limitwatch)
    if spec.preloads and spec.fannode_args is not None:
        from fannode.node.forked import PreloadWatcher
        return PreloadWatcher(block.name, argv[0], template=lambda: template(block),
                              skip=len(argv) - len(spec.fannode_args),
                              failed=lambda t: template_failed(block, t), **options)
    return GroupWatcher(block.name, argv[0], **options)


def executable(block: Block) -> str:
    """argv[0] as run: `fannode` is the node's own; a relative path is relative to
    node.yml's directory (as the docs say), not to the block's cwd."""
    argv0 = block.spec.argv[0]
    if argv0 == 'fannode':
        return fannode_command()
    return os.path.join(block.node.directory, argv0) if os.sep in argv0 else argv0

def missing_command(block: Block) -> str | None:
    argv0 = executable(block)
    if argv0 == fannode_command():
        return None
    path = dict(block.spec.env_dict()).get('PATH', os.environ.get('PATH'))
    if os.sep in argv0:
        found = os.access(argv0, os.X_OK)
    else:
        found = shutil.which(argv0, path=path) is not None
    return None if found else 'command not found: %s' % block.spec.argv[0]
