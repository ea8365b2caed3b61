"""What `fannode ps` shows of the node's blocks while they roll out
(fannode.node.rollout): a block's new processes beside its old ones, its rollout, and
the rollouts of it that ended lately (what `fannode rollout` follows)."""
from __future__ import annotations

from typing import Any, Protocol

from fannode.node.block import Block


class Record(Protocol):
    """A rollout (fannode.node.rollout.Rollout), as shown."""

    name: str
    state: str
    total: int

    def as_dict(self) -> dict[str, Any]: ...


class Blocks(Protocol):
    blocks: dict[str, Block]


class Shown(Protocol):
    """The node's rollouts (fannode.node.rollout.Rollouts)."""

    @property
    def node(self) -> Blocks: ...
    @property
    def last(self) -> dict[str, Any]: ...   # name → Record
    @property
    def ended(self) -> list[Any]: ...       # Records

NEXT = '@next'  # the new spec's key in node.blocks while it rolls out (as rollout.NEXT)
KEPT = 3        # ended rollouts shown per block


def statuses(rollouts: Shown) -> list[dict[str, Any]]:
    """Each block's status; a block rolling out shows its new processes too
    (`"next": true`), state `rolling out` and its `rollout`."""
    blocks = rollouts.node.blocks
    out = []
    for key, block in blocks.items():
        if key.endswith(NEXT) and key[:-len(NEXT)] in blocks:
            continue  # shown with the block it replaces
        status = block.status()
        if key.endswith(NEXT):  # the old watcher just removed, the new one not yet renamed
            key = key[:-len(NEXT)]
            for process in status['processes']:
                process['next'] = True
        status['version'] = block.spec.version
        new = blocks.get(key + NEXT)
        if new is not None and new is not block:
            extra = new.status()
            for process in extra['processes']:
                process['next'] = True
            status['processes'] += extra['processes']
            for field in ('running', 'ready', 'restarts'):
                status[field] += extra[field]
        rollout: Record | None = rollouts.last.get(key)
        if rollout is not None:
            status['rollout'] = rollout.as_dict()
            if rollout.state in ('waiting', 'running'):
                status['state'] = 'rolling out'
                status['desired'] = rollout.total
        ended = [r.as_dict() for r in rollouts.ended if r.name == key]
        if ended:
            status['rollouts'] = ended[-KEPT:]
        out.append(status)
    return out
