"""The node's dashboard (fannode.tui.dashboard) on a fixed feed, headless (Pilot): top's
table with the node timeline under it; `q` and Ctrl-C ask before stopping the cluster,
and the app ends when the node says it has stopped."""
from __future__ import annotations

from dashboard_helpers import EVENTS, FixedFeed, timeline_entries
from top_helpers import run, table_rows, until

from fannode.tui.dashboard import DashboardApp
from fannode.tui.nodefeed import TimelineBatch
from fannode.tui.screens.quit import QuitScreen


def texts(app) -> list[str]:
    pane = app.node_screen.timeline
    return [pane.text(key, 'text') for key in pane.keys]


def test_the_main_view_is_tops_table_with_the_node_timeline_under_it():
    feed = FixedFeed()
    app = DashboardApp(feed)

    async def test(pilot):
        await until(pilot, lambda: table_rows(app), message='rows')
        assert 'Greeting' in {cells[0].strip() for cells in table_rows(app).values()}
        assert texts(app) == [text for _, _, text in EVENTS]
        assert [app.node_screen.timeline.text(k, 'kind') for k in app.node_screen.timeline.keys][:2] == ['started', 'started']
        # entries already shown are not shown twice; new ones go at the end
        feed.deliver('timeline', TimelineBatch(timeline_entries(start=9, events=[
            ('', 'edit-applied', 'node.yml changed: greeting 3 → 4 processes'),
            ('', 'edit-refused', 'node.yml: not yaml; still running the previous topology'),
            ('greeting', 'scaled', 'greeting: 4 → 5 processes (fannode scale)')])))
        await until(pilot, lambda: len(texts(app)) == len(EVENTS) + 1, message='one entry more')
        assert texts(app)[-1] == 'greeting: 4 → 5 processes (fannode scale)'
        await pilot.press('plus')
        assert feed.calls[-1][0] == 'scale'
    run(app, test)


def test_q_asks_and_only_y_stops_the_node_and_the_app_ends_when_it_has_stopped():
    feed = FixedFeed()
    app = DashboardApp(feed)

    async def test(pilot):
        await until(pilot, lambda: table_rows(app), message='rows')
        await pilot.press('q')
        assert isinstance(app.screen, QuitScreen)
        await pilot.press('n')
        assert not isinstance(app.screen, QuitScreen) and ('stop_node',) not in feed.calls
        await pilot.press('ctrl+c')  # Ctrl-C is q: it asks too
        assert isinstance(app.screen, QuitScreen)
        await pilot.press('y')
        assert ('stop_node',) in feed.calls
        await until(pilot, lambda: 'stopping the cluster' in str(app.main.query_one('#status').render()),
                    message='the status line to say it')
        assert app.is_running  # until the node has stopped every process
        await pilot.press('q')
        assert not isinstance(app.screen, QuitScreen)  # once asked is enough
        feed.finish(0)
        await until(pilot, lambda: not app.is_running, message='the app to end')
    run(app, test)
    assert app.return_code == 0 and feed.calls.count(('stop_node',)) == 1


def test_e_without_a_terminal_to_suspend_says_so_in_one_line(monkeypatch):
    monkeypatch.setenv('EDITOR', 'true')
    feed = FixedFeed()
    app = DashboardApp(feed)

    async def test(pilot):
        await until(pilot, lambda: table_rows(app), message='rows')
        await pilot.press('e')
        status = str(app.main.query_one('#status').render())
        assert 'cannot open an editor here' in status and '\n' not in status
    run(app, test)


def test_the_log_pane_says_it_is_paused_when_the_cursor_leaves_the_newest_line():
    feed = FixedFeed()
    app = DashboardApp(feed)

    def status() -> str:
        return str(app.screen.query_one('#log-status').render())

    async def test(pilot):
        await until(pilot, lambda: table_rows(app), message='rows')
        await pilot.press('l')
        await until(pilot, lambda: '5 lines' in status(), message='the lines at INFO and above')
        assert 'paused' not in status()
        await pilot.press('up')
        await until(pilot, lambda: 'paused' in status(), message='paused')
        await pilot.press('end')
        await until(pilot, lambda: 'paused' not in status(), message='following again')
    run(app, test)
