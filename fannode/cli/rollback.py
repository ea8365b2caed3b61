"""`fannode rollback NAME`: replace a block's processes a few at a time with the spec it
ran before its last replace, following the node's progress until it is done."""
from __future__ import annotations

from fannode.cli.rollout import RolloutCommand


class RollbackCommand(RolloutCommand):
    """Roll an instance block back to the spec it ran before its last rolling replace,
    one process at a time; exits 0 when done, 1 when the node rolled back by itself."""

    help = 'Roll an instance block back to its previous spec: fannode rollback greeting'
    verb = 'rollback'
