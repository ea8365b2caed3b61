"""`fannode top` at scale: the 'inst' column keeps its width until a service counts 100
instances or more, then widens so that '200/200' is shown whole (it read '200/…')."""
from __future__ import annotations

import dataclasses

from top_helpers import FixedSource, fixed_snapshot, run, until

from fannode.tui.app import TopApp


def count_width(app) -> int:
    return next(c.width for c in app.main.table.columns if c.key == 'count')


def test_the_count_column_widens_from_the_first_three_digit_count_and_stays_wide():
    source = FixedSource()

    async def test(pilot):
        app = pilot.app
        await until(pilot, lambda: app.main.table.row_count > 0, message='rows')
        assert count_width(app) == 5
        rows = fixed_snapshot().rows
        big = tuple(dataclasses.replace(r, count='200/200') if r.key == 's:Greeting' else r for r in rows)
        source.deliver('snapshot', dataclasses.replace(fixed_snapshot(), rows=big))
        await until(pilot, lambda: count_width(app) == 7, message='the wide count column')
        line = ''.join(segment.text for segment in app.main.table.render_line(1))  # the Greeting row
        assert '200/200' in line and '…' not in line.split('Greeting')[1][:12]
        source.deliver('snapshot', fixed_snapshot())  # back under 100: no column jumping to and fro
        await pilot.pause(0.2)
        assert count_width(app) == 7
    run(TopApp(source), test)
