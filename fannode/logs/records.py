"""What is safe to assume of a log record that came over the network: nothing, so read
its fields through these."""
from __future__ import annotations

import math
from typing import Any

from fannode.core.trace import LINE_FIELDS

Record = dict[str, Any]


def by_time(records: list[Any]) -> list[Any]:
    """`records` sorted by time (a record that is not a map: as if at 0)."""
    return sorted(records, key=lambda r: ts_of(r) if type(r) is dict else 0.0)


def ts_of(record: Record) -> float:
    """A record's time for sorting; 0 when it carries none that sorts (missing, NaN, text)."""
    ts = record.get('ts', 0)
    return float(ts) if isinstance(ts, (int, float)) and ts == ts else 0.0


# A log line's fields (core.logsetup.to_record), in its order
LOG_FIELDS = ('service', 'instance', 'pid', 'host', 'kind', 'ts', 'level', 'logger', 'msg', 'trace', 'span')


# An HTTP request's span ships with its access line in one record (fannode.web): the span's
# fields plus LINE_FIELDS. Readers show it as the two it stands for (`unpack`).
def carries_line(record: Any) -> bool:
    """A span record that carries a log line (an HTTP request's span and its access line)."""
    return type(record) is dict and record.get('kind') == 'span' and type(record.get('msg')) is str


def unpack(record: Any, spans: bool = True) -> list[Any]:
    """The records `record` stands for, as they were before a span carried its line: the
    span (with `spans`) and its log line, stamped when the span ended; any other record as is."""
    if not carries_line(record):
        return [record]
    line = {key: record[key] for key in LOG_FIELDS if key in record}
    line['kind'] = 'log'
    ts, took = record.get('ts'), record.get('duration_ms')
    if isinstance(ts, (int, float)) and isinstance(took, (int, float)):
        try:  # from the network: an int too big for a float, or NaN, keeps the span's time
            end = ts + took / 1000.0
        except OverflowError:
            end = math.nan
        if math.isfinite(end):
            line['ts'] = end
    if not spans:
        return [line]
    return [{key: value for key, value in record.items() if key not in LINE_FIELDS}, line]


def unpack_all(records: Any, spans: bool) -> list[Any]:
    """`unpack` of each of `records`, in their order."""
    return [each for record in records for each in unpack(record, spans)]
