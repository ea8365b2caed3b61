"""Log records carry the service and the trace id of the work that wrote them."""
from __future__ import annotations

import logging
import sys

from fannode.core import trace

FORMAT = '%(asctime)s %(levelname)-7s %(service)s %(name)s [%(trace_id)s] %(message)s'


class ContextFilter(logging.Filter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = trace.get_id() or '-'
        record.service = self.service
        return True


def setup(level: str = 'INFO', service: str = 'fannode') -> None:
    """Configure the root logger of a fannode process (never at import time)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
