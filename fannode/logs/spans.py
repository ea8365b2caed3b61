"""A trace's spans as a tree, for `fannode trace` and the TUI's trace view.

The records came over the network: only string ids link spans, ids may repeat and parents
may go in circles, and a chain may be as long as a log hub keeps (1,000 spans, more from
several hubs). The walk is a loop with a stack of its own, never recursion, and shows every
span once, whatever the links."""
from __future__ import annotations

from typing import Iterable

from fannode.logs.records import Record, ts_of


def span_tree(records: Iterable[Record], logs: bool = False) -> list[tuple[int, Record]]:
    """The spans of a trace as (depth, span), each after its parent, siblings in time order.
    With `logs`, log lines too, each under its span (at the top when it names none known)."""
    records = list(records)
    spans = [r for r in records if r.get('kind') == 'span']
    ids = {s['span'] for s in spans if isinstance(s.get('span'), str)}
    children: dict[str | None, list[Record]] = {}
    for r in records:
        kind = r.get('kind')
        if kind == 'span' or (logs and kind == 'log'):
            link = r.get('parent' if kind == 'span' else 'span')
            children.setdefault(link if isinstance(link, str) and link in ids else None, []).append(r)
    out: list[tuple[int, Record]] = []
    placed: set[int] = set()      # id() of each record shown
    expanded: set[str] = set()    # span ids whose children are shown: a repeated id adds none

    def walk(first: list[Record], depth: int) -> None:
        stack = [(depth, r) for r in in_time(first)]
        while stack:
            level, r = stack.pop()
            if id(r) in placed:   # met again around a circle
                continue
            placed.add(id(r))
            out.append((level, r))
            span = r.get('span') if r.get('kind') == 'span' else None
            if isinstance(span, str) and span not in expanded:
                expanded.add(span)
                stack.extend((level + 1, c) for c in in_time(children.get(span, [])))

    walk(children.get(None, []), 0)
    # A circle of parents has no root: each span of it still shows, the earliest as a root.
    for span in sorted(spans, key=ts_of):
        if id(span) not in placed:
            walk([span], 0)
    return out


def in_time(records: list[Record]) -> list[Record]:
    """`records` latest first, to push on a stack: they pop in time order, ties as they came."""
    return sorted(records, key=ts_of)[::-1]
