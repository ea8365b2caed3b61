"""What the node does with its children's output: every line becomes a log record
(children that are fannode processes write JSON records, FANNODE_LOG_FORMAT=json; any
other line is wrapped as one), is printed, and is forwarded to the log hub.

A line is taken for a record only on stderr of a block that runs fannode (where fannode
writes them), and only when its fields have the types fannode writes; anything else is
text. Otherwise any child could print `{"kind": "log", "service": "billing", ...}` and be
shown, and kept in the log hub, as another service. Who wrote it (pid, host) is what the
node knows, whatever the record says; its text is made visible when printed (output.py).
"""
from __future__ import annotations

import json
import math
import socket
import time
from typing import Any

from fannode.logs.ship import Shipper

HOST = socket.gethostname()


# The fields fannode's own records have, and their types (core.logsetup, core.trace).
FIELDS: dict[str, tuple[type, ...]] = {
    'ts': (int, float), 'level': (str,), 'logger': (str,), 'msg': (str,), 'service': (str,),
    'instance': (str,), 'trace': (str, type(None)), 'span': (str, type(None)), 'name': (str,),
    'type': (str,), 'status': (str,), 'parent': (str, type(None)), 'duration_ms': (int, float)}
LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')


def parse(line: str, pid: int = 0) -> dict[str, Any] | None:
    """The record a fannode child wrote, or None for any other line (only call this for
    lines from where fannode writes records)."""
    if not line.startswith('{"'):
        return None
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get('kind') not in ('log', 'span'):
        return None
    for key, kinds in FIELDS.items():
        value = record.get(key)
        if key in record and type(value) not in kinds:
            return None
        if type(value) is float and not math.isfinite(value):  # json reads NaN and Infinity
            return None
    if record['kind'] == 'log' and 'msg' not in record:
        return None
    if 'msg' in record and record.get('level', 'INFO') not in LEVELS:  # a log line, or a span carrying one
        return None
    record['pid'], record['host'] = pid, HOST
    return record


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
