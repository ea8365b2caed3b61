"""What the node's dashboard (fannode.tui.dashboard) asks of its source: a `NodeFeed`.

Two feeds serve it: the node itself when `fannode up` runs the dashboard in its own
process (fannode.tui.localfeed.LocalFeed), and a running node reached over its control
socket and log hub (`fannode attach`). A NodeFeed is a `fannode top` Source
(fannode.tui.source: snapshots, scale/restart/route, follow_logs, trace; everything it
has comes back through `deliver(kind, payload)`, from any thread, never blocking), plus:

    node_file       the node.yml (or Procfile) the node runs: `e` opens it in $EDITOR;
                    the node applies the saved file as it does any edit
    stop_node()     `q` confirmed: the node stops every process gracefully; `stopped`
                    is delivered once it has (the app then exits)

and these deliveries besides top's ('snapshot', 'status', 'logs', 'trace'):

    'timeline'  TimelineBatch: node events, oldest first, each
                {'id', 'time', 'block', 'kind', 'text'} (fannode.node.timeline; a
                remote feed gets them from the control verb node.timeline)
    'stopped'   NodeStopped: the node is gone (stopped, or no longer answers)
"""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from fannode.tui.source import Source


@dataclasses.dataclass(frozen=True)
class TimelineBatch:
    entries: tuple[dict[str, Any], ...]


@dataclasses.dataclass(frozen=True)
class NodeStopped:
    code: int = 0
    why: str = ''


class NodeFeed(Source, Protocol):
    node_file: str

    def stop_node(self) -> None: ...
