"""Screenshots of the node's dashboard (pytest-textual-snapshot) on fixed data, 160×45.
After a deliberate change of the look: `pytest tests/tui/test_dashboard_snapshots.py
--snapshot-update`, then look at the SVGs under __snapshots__/ before committing them."""
from __future__ import annotations

import pytest

from dashboard_helpers import FixedFeed
from top_helpers import SIZE, utc

from fannode.tui.dashboard import DashboardApp

pytestmark = pytest.mark.usefixtures(utc.__name__)  # log and span times shown in UTC


def test_dashboard_main_view_with_the_timeline(snap_compare):
    assert snap_compare(DashboardApp(FixedFeed()), terminal_size=SIZE)


def test_dashboard_timeline_focused(snap_compare):
    assert snap_compare(DashboardApp(FixedFeed()), press=['tab', 'up', 'up'], terminal_size=SIZE)


def test_dashboard_quit_confirm(snap_compare):
    assert snap_compare(DashboardApp(FixedFeed()), press=['q'], terminal_size=SIZE)


def test_dashboard_help(snap_compare):
    assert snap_compare(DashboardApp(FixedFeed()), press=['question_mark'], terminal_size=SIZE)


def test_dashboard_log_pane(snap_compare):
    assert snap_compare(DashboardApp(FixedFeed()), press=['l', '3'], terminal_size=SIZE)
