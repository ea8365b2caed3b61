"""What the node does with its children's output: every line becomes a log record
(children that are fannode processes write JSON records, FANNODE_LOG_FORMAT=json; any
other line is wrapped as one), is printed, and is forwarded to the log hub."""
from __future__ import annotations

import json
import socket
import time
from typing import Any

from fannode.logs.ship import Shipper

HOST = socket.gethostname()


def parse(line: str) -> dict[str, Any] | None:
    """The record a fannode child wrote, or None for any other line."""
    if not line.startswith('{"'):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get('kind') in ('log', 'span') else None


def wrap(line: str, block: str, index: int, pid: int, stream: str) -> dict[str, Any]:
    """A line of a child that writes no records (redis, a crash's traceback)."""
    return {'kind': 'log', 'service': block, 'instance': '%s.%d' % (block, index), 'pid': pid,
            'host': HOST, 'ts': time.time(), 'level': 'INFO', 'logger': stream, 'msg': line,
            'trace': '', 'span': ''}


def display(record: dict[str, Any]) -> str:
    """A record as the node prints it, after the block.index prefix."""
    trace = record.get('trace') or '-'
    logger = record.get('logger', '')
    where = '' if logger == 'print' else logger + ' '
    return '%-7s %s[%s] %s' % (record.get('level', ''), where, trace[:8], record.get('msg', ''))


class Forwarder:
    """Records to the log hub at `url` (hub://), batched on the node's asyncio loop."""

    def __init__(self, url: str):
        import asyncio

        from fannode.hub.client import hub_endpoint
        loop = asyncio.get_running_loop()
        self.shipper = Shipper(hub_endpoint(url), lambda delay, func: loop.call_later(delay, func))
        self.url = url

    def add(self, record: dict[str, Any]) -> None:
        self.shipper.add(record)

    def close(self) -> None:
        self.shipper.close()
