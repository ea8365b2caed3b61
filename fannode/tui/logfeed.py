"""The log pane's and trace view's only way to the cluster's logs: the log hubs, through
fannode.logs.client.LogClient (gevent: used from the source's thread only)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from fannode.exceptions import FannodeError
from fannode.tui.rows import Row

if TYPE_CHECKING:
    from fannode.logs.client import Follow, LogClient


class LogFeed:
    """When the client cannot be made, `available` is False and `problem` says why in
    one line, which the views show instead of records."""

    def __init__(self, registry_url: str):
        from fannode.logs.client import LogClient  # gevent and the hub client: loaded when logs are first asked for
        self.registry_url = registry_url
        self.client: LogClient | None = None
        self.problem = ''
        try:
            self.client = LogClient(registry_url)
        except Exception as e:  # noqa: BLE001 - whatever it raises, the pane says it in one line
            self.problem = 'logs are not available: %s' % (e,)

    @property
    def available(self) -> bool:
        return self.client is not None

    def follow(self, callback: Callable[[dict], None], services: tuple[str, ...] = (),
               level: str | None = None, history: int = 200) -> Follow:
        return self._client().follow(callback, services=tuple(services), level=level or '', history=history)

    def trace(self, trace_id: str, timeout: float = 2.0) -> list[dict]:
        return list(self._client().trace(trace_id, timeout=timeout))

    def _client(self) -> LogClient:
        if self.client is None:
            raise FannodeError(self.problem)
        return self.client


def record_filter(row: Row | None) -> Callable[[dict[str, Any]], bool]:
    """Records of the row: every record for a group row (the feed filters by service),
    the instance's own for an instance row, the block's for a node block."""
    if row is None:
        return lambda record: True
    if row.kind == 'instance':
        return lambda record: record.get('pid') == row.pid and (not row.host or record.get('host') in (row.host, None))
    if row.kind == 'block':
        return lambda record: record.get('service') == row.name or record.get('instance', '').startswith(row.name + '.')
    return lambda record: True
