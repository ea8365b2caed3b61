"""The NodeFeed (fannode.tui.nodefeed) of `fannode attach`: a node running elsewhere on
this machine, reached over its control socket and the cluster's log hub.

It is `fannode top`'s source (fannode.tui.source.TopSource: the table, scale/restart/route,
the log pane following the log hub, traces), for the registry the node says it runs, plus
a thread that polls the control verb `node.timeline` (fannode.node.timeline) for the node's
events, and `stop_node`, which stops the node as `fannode down` does
(fannode.node.stopnode). When the node no longer answers, or its pid changes (it was
stopped and another started), 'stopped' is delivered and the dashboard exits.
"""
from __future__ import annotations

import threading
from typing import Any

from fannode.exceptions import FannodeError
from fannode.node.timeline import MAX_REPLY  # entries one node.timeline reply holds at most
from fannode.tui.nodefeed import NodeStopped, TimelineBatch
from fannode.tui.rows import Status
from fannode.tui.source import Deliver, TopSource

TIMELINE_EVERY = 0.5   # seconds between node.timeline polls
GONE_AFTER = 3         # polls in a row without an answer: the node is gone
STOP_TIMEOUT = 60.0    # seconds a stop waits before it kills what is left (as `fannode down`)


class RemoteFeed(TopSource):
    def __init__(self, node_file: str, registry_url: str, pid: int, interval: float = 1.0):
        super().__init__(registry_url, node_file, interval)
        self.pid = pid
        self.cursor = 0
        self.closing = threading.Event()
        self.stopping = threading.Event()
        self._poller: threading.Thread | None = None

    def attach(self, deliver: Deliver) -> None:
        super().attach(deliver)
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll_timeline, name='fannode-attach-timeline', daemon=True)
            self._poller.start()

    def stop(self, timeout: float = 3.0) -> None:
        self.closing.set()
        super().stop(timeout)

    def stop_node(self) -> None:
        """The dashboard's confirmed stop: in a thread of its own, since it waits until all
        is gone; progress comes as status lines, the end as 'stopped'."""
        if not self.stopping.is_set():
            self.stopping.set()
            threading.Thread(target=self._stop_node, name='fannode-attach-stop', daemon=True).start()

    def _stop_node(self) -> None:
        from fannode.node import stopnode
        from fannode.node.client import NotRunning

        def progress(left: int) -> None:
            self.deliver('status', Status(stopnode.left(left)))
        try:
            stopnode.stop(self.node_file, STOP_TIMEOUT, progress, expected=self.pid)
        except NotRunning:
            pass
        except FannodeError as e:
            self.stopping.clear()
            self.deliver('status', Status(str(e), ok=False))
            return
        self.deliver('stopped', NodeStopped(0, 'stopped'))

    def take_timeline(self, reply: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        """The entries of one node.timeline reply; the cursor moves past them. A reply of
        another pid (the node was stopped and another started, whatever its cursor):
        FannodeError, and the dashboard ends."""
        pid = reply.get('pid')
        if pid != self.pid and isinstance(pid, int) and not isinstance(pid, bool):
            raise FannodeError('another node (pid %d) runs %s now' % (pid, self.node_file))
        entries = tuple(e for e in reply.get('entries', ()) if isinstance(e, dict))
        cursor = reply.get('cursor')
        if isinstance(cursor, int) and not isinstance(cursor, bool):
            self.cursor = max(self.cursor, cursor)
        return entries

    def _poll_timeline(self) -> None:
        from fannode.node.client import NodeClient
        client = NodeClient(self.node_file, timeout=2.0)
        missed = 0
        while not self.closing.is_set():
            try:
                if self.stopping.is_set():
                    raise FannodeError('stopping')  # its end is _stop_node's to say
                reply = client.call('timeline', since=self.cursor)
                entries = self.take_timeline(reply)
                if self.cursor and not entries and reply.get('cursor', 0) < self.cursor:
                    raise FannodeError('another node runs %s now' % self.node_file)  # one that says no pid
                missed = 0
                if entries:
                    self.deliver('timeline', TimelineBatch(entries))
            except FannodeError as e:
                missed += 1
                if not self.stopping.is_set() and (missed >= GONE_AFTER or 'another node' in str(e)
                                                   or not client.running):
                    self.deliver('stopped', NodeStopped(0, str(e) if 'another node' in str(e)
                                                        else 'the node for %s is gone' % self.node_file))
                    return
                entries = ()
            if len(entries) < MAX_REPLY:  # a backlog longer than one reply: the rest at once
                self.closing.wait(TIMELINE_EVERY)
