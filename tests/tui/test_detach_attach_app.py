"""`fannode attach`'s app (fannode.tui.remoteapp.AttachApp) on a fixed feed, headless:
`q` detaches without stopping the node, `S` asks and `y` stops it, the timeline shows what
the feed delivers; and RemoteFeed's cursor over node.timeline replies."""
from __future__ import annotations

from top_helpers import FixedSource, run, until

from fannode.tui.nodefeed import NodeStopped, TimelineBatch
from fannode.tui.remote import RemoteFeed
from fannode.tui.remoteapp import AttachApp
from fannode.tui.screens.quit import QuitScreen

ENTRY = {'id': 1, 'time': 1_700_000_000.0, 'block': 'greeting', 'kind': 'started',
         'text': 'greeting.1 started (pid 4101)'}


class FixedFeed(FixedSource):
    """A NodeFeed: the fixed source, one timeline entry, and stop_node recorded."""

    node_file = 'node.yml'

    def attach(self, deliver) -> None:
        super().attach(deliver)
        deliver('timeline', TimelineBatch((ENTRY,)))

    def stop_node(self) -> None:
        self.calls.append(('stop_node',))
        self.deliver('stopped', NodeStopped(0, 'stopped'))


def test_q_detaches_and_leaves_the_node_running():
    feed = FixedFeed()
    app = AttachApp(feed)

    async def test(pilot):
        await until(pilot, lambda: [e['text'] for e in app.main.timeline.entries] == [ENTRY['text']],
                    message='the timeline entry')
        assert app.return_code is None
        await pilot.press('q')
        await until(pilot, lambda: app.return_code == 0, message='the app to exit')
    run(app, test)
    assert ('stop_node',) not in feed.calls
    assert app.gone == ''


def test_q_in_the_log_view_detaches_too():
    feed = FixedFeed()
    app = AttachApp(feed)

    async def test(pilot):
        await until(pilot, lambda: app.main.table.keys, message='the rows')
        await pilot.press('l')
        await until(pilot, lambda: type(app.screen).__name__ == 'LogScreen', message='the log view')
        await pilot.press('q')
        await until(pilot, lambda: app.return_code == 0, message='the app to exit')
    run(app, test)
    assert ('stop_node',) not in feed.calls


def test_capital_s_asks_and_y_stops_the_node():
    feed = FixedFeed()
    app = AttachApp(feed)

    async def test(pilot):
        await pilot.press('S')
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), message='the question')
        await pilot.press('n')  # anything but y: the node goes on
        await until(pilot, lambda: not isinstance(app.screen, QuitScreen), message='the question to close')
        assert ('stop_node',) not in feed.calls
        await pilot.press('S')
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), message='the question again')
        await pilot.press('y')
        await until(pilot, lambda: ('stop_node',) in feed.calls, message='stop_node')
        await until(pilot, lambda: app.return_code == 0, message='the app to exit once the node stopped')
    run(app, test)
    assert app.gone == 'stopped'
    assert app.code == 0


def test_help_says_q_detaches():
    app = AttachApp(FixedFeed())

    async def test(pilot):
        await pilot.press('question_mark')
        await until(pilot, lambda: type(app.screen).__name__ == 'HelpScreen', message='help')
        text = str(app.screen.query_one('Static').render())
        assert 'detach: the node keeps running' in text
        assert 'stop the cluster (asks first)' not in text
    run(app, test)


def test_remote_feed_moves_its_cursor_past_each_reply():
    feed = RemoteFeed('node.yml', 'hub://127.0.0.1:1', pid=1)
    assert feed.take_timeline({'cursor': 3, 'entries': [ENTRY, dict(ENTRY, id=2), dict(ENTRY, id=3)]}) == (
        ENTRY, dict(ENTRY, id=2), dict(ENTRY, id=3))
    assert feed.cursor == 3
    assert feed.take_timeline({'cursor': 3, 'entries': []}) == ()
    assert feed.cursor == 3
    assert feed.take_timeline({'cursor': 'x', 'entries': ['junk', ENTRY]}) == (ENTRY,)  # what a peer sends is checked
    assert feed.cursor == 3
