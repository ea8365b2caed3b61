"""Screenshots of `fannode top` (pytest-textual-snapshot) on fixed data, 160×45. After a
deliberate change of the look: `pytest tests/tui/test_top_snapshots.py --snapshot-update`,
then look at the SVGs under __snapshots__/ before committing them."""
from __future__ import annotations

import pytest

from top_helpers import SIZE, FixedSource, fixed_snapshot, utc

from fannode.tui.app import TopApp

pytestmark = pytest.mark.usefixtures(utc.__name__)  # log and span times shown in UTC


def test_main_view(snap_compare):
    assert snap_compare(TopApp(FixedSource()), terminal_size=SIZE)


def test_main_view_after_a_key_with_the_status_line(snap_compare):
    assert snap_compare(TopApp(FixedSource()), press=['down', 'r'], terminal_size=SIZE)


def test_log_pane_at_warning_and_above(snap_compare):
    assert snap_compare(TopApp(FixedSource()), press=['l', '3'], terminal_size=SIZE)


def test_trace_view(snap_compare):
    async def open_trace(pilot):
        await pilot.press('l')
        pilot.app.screen.table.move_cursor(1)
        await pilot.press('enter')
        await pilot.pause()
    assert snap_compare(TopApp(FixedSource()), run_before=open_trace, terminal_size=SIZE)


def test_help(snap_compare):
    assert snap_compare(TopApp(FixedSource()), press=['question_mark'], terminal_size=SIZE)


def test_main_view_with_dependencies(snap_compare):
    """Greeting's soft Mailer is down (breakers open and half-open); a Listen instance
    misses its hard Store and is not ready."""
    assert snap_compare(TopApp(FixedSource(fixed_snapshot(deps=True))), terminal_size=SIZE)
