"""`fannode rollout NAME`: replace a block's processes a few at a time with its current
spec (a rolling restart), following the node's progress until it is done."""
from __future__ import annotations

import argparse
from typing import Any

from fannode.cli.nodefile import NodeCommand

POLL = 0.2  # seconds between looks at `ps` while it runs


class RolloutCommand(NodeCommand):
    """Replace an instance block's processes one at a time, each new one ready before an
    old one stops; exits 0 when done, 1 when the node rolled back by itself."""

    help = 'Rolling restart of an instance block: fannode rollout greeting'
    verb = 'rollout'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument('name', help='the instance block in node.yml')
        parser.add_argument('--json', action='store_true', help='print the outcome as JSON')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.cli import output
        node = self.node(args)
        begun = node.call(self.verb, name=args.name)
        if not args.json:
            output.out.print('%s: %s %s → %s (%d processes)' % (
                args.name, 'rolling back' if self.verb == 'rollback' else 'rolling out',
                begun['from'], begun['to'], begun['total']))
        done = follow(node, args.name, begun['id'], None if args.json else output.out.print)
        if args.json:
            output.print_json(done)
        if done['state'] == 'done':
            if not args.json:
                output.out.print('%s: %s %s, %d/%d replaced in %.1fs' % (
                    args.name, 'rolled back to' if self.verb == 'rollback' else 'rolled out',
                    done['to'], done['done'], done['total'], done['seconds']))
            return 0
        output.error('%s: %s to %s %s: %s' % (args.name, self.verb, done['to'],
                                             'failed' if done['state'] == 'rolled back' else done['state'],
                                             done['error'] or 'the node stopped it'))
        return 1


def follow(node: Any, name: str, rollout_id: int, say: Any) -> dict[str, Any]:
    """Look at `ps` until rollout `rollout_id` of block `name` has ended; its last record."""
    import time

    from fannode.exceptions import FannodeError
    shown, missing = 0, 0
    while True:
        blocks = {b['name']: b for b in node.ps()['blocks']}
        block = blocks.get(name) or {}
        # the one running or last, and those that ended lately (another may have begun since)
        records = [block.get('rollout') or {}] + list(block.get('rollouts') or [])
        record = next((r for r in records if isinstance(r, dict) and r.get('id') == rollout_id), {})
        if not record:
            missing += 1  # the block was removed by an edit of node.yml meanwhile
            if missing * POLL > 5.0:
                raise FannodeError('%s: the rollout is no longer known to the node' % name)
            time.sleep(POLL)
            continue
        if say is not None and record['done'] > shown and record['state'] == 'running':
            shown = record['done']
            say('%s: %d/%d replaced' % (name, shown, record['total']))
        if record['state'] not in ('waiting', 'running'):
            return record
        time.sleep(POLL)
