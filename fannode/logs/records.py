"""What is safe to assume of a log record that came over the network: nothing, so read
its fields through these."""
from __future__ import annotations

from typing import Any

Record = dict[str, Any]


def ts_of(record: Record) -> float:
    """A record's time for sorting; 0 when it carries none that sorts (missing, NaN, text)."""
    ts = record.get('ts', 0)
    return float(ts) if isinstance(ts, (int, float)) and ts == ts else 0.0
