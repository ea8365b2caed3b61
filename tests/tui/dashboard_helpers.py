"""A NodeFeed (fannode.tui.nodefeed) serving fixed data, for the dashboard's Pilot and
snapshot tests: top's fixed cluster (top_helpers.FixedSource) plus a node timeline."""
from __future__ import annotations

from top_helpers import T0, FixedSource

from fannode.tui.nodefeed import NodeStopped, TimelineBatch

EVENTS = [
    ('hub', 'started', 'hub.1 started (pid 4001)'),
    ('greeting', 'started', 'greeting.1 started (pid 4101)'),
    ('hub', 'ready', 'hub ready: 1/1'),
    ('greeting', 'ready', 'greeting ready: 3/3'),
    ('', 'ready', 'cluster ready in 1.4s: greeting 3/3, redis 1/1, web 0/2'),
    ('web', 'backoff', 'web.1 exited with status 1 after 0.2s; restarting in 1.0s (failure 3 of 10)'),
    ('web', 'failed', 'web failed: exited 10 times in a row; not restarted until node.yml or `fannode scale` '
                      'changes it'),
    ('greeting', 'liveness', 'greeting.4 liveness failed: GET /health: 500 (3 in a row); restarting'),
    ('', 'edit-applied', 'node.yml changed: greeting 3 → 4 processes'),
    ('', 'edit-refused', "node.yml:9: 'numprocesses' must be a whole number; still running the previous topology"),
]


def timeline_entries(start: int = 1, events=EVENTS) -> tuple[dict, ...]:
    return tuple({'id': start + n, 'time': T0 + n * 1.5, 'block': block, 'kind': kind, 'text': text}
                 for n, (block, kind, text) in enumerate(events))


class FixedFeed(FixedSource):
    """Fixed snapshot, logs, traces and timeline; stop_node() answers NodeStopped only
    when the test says (`finish`), as a node that takes its time to stop."""

    node_file = 'node.yml'

    def attach(self, deliver) -> None:
        super().attach(deliver)
        deliver('timeline', TimelineBatch(timeline_entries()))

    def stop_node(self) -> None:
        self.calls.append(('stop_node',))

    def finish(self, code: int = 0) -> None:
        self.deliver('stopped', NodeStopped(code))
