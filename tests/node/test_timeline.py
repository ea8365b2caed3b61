"""The node timeline: what each node line is (kind, block), the bounded ring, and the
control verb node.timeline that `fannode attach` polls with a cursor."""
import io
import os
import sys
from pathlib import Path

import pytest
from rich.console import Console

from fannode.exceptions import UsageError
from fannode.node import timeline as tl
from fannode.node.output import Printer

sys.path.insert(0, str(Path(__file__).parent))
from test_control import run  # noqa: E402 - the control socket with a stand-in node

LINES = [
    ('greeting.1 started (pid 4101)', 'started', 'greeting'),
    ('greeting ready: 2/2', 'ready', 'greeting'),
    ('cluster ready in 1.2s: greeting 2/2', 'ready', ''),
    ('greeting.1 exited with status 1 after 0.3s; restarting in 1.0s (failure 2 of 10)', 'backoff', 'greeting'),
    ('greeting.2 killed by SIGKILL after 3.0s; restarting', 'restarted', 'greeting'),
    ('worker.1 exited with status 0; not restarted (restart: on-failure)', 'exited', 'worker'),
    ('web failed: exited 10 times in a row; not restarted until node.yml or `fannode scale` changes it',
     'failed', 'web'),
    ('web.1 liveness failed: GET /health: 500 (3 in a row); restarting', 'liveness', 'web'),
    ('web.2 killed: memory limit 256 MiB (rss 300 MiB) after 3.0s; restarting', 'limit', 'web'),
    ('node.yml changed: listen 4 → 2 processes', 'edit-applied', ''),
    ("node.yml:7: 'numprocesses' must be a whole number; still running the previous topology", 'edit-refused', ''),
    ('greeting: 2 → 3 processes (fannode scale)', 'scaled', 'greeting'),
    ('greeting: rolling out 1.2 → 1.3 (3 processes, 1 at a time)', 'rollout', 'greeting'),
    ('greeting: 2/3 replaced', 'rollout', 'greeting'),
    ('greeting: reloading (greeting.py changed)', 'reload', 'greeting'),
    ('stopping: services finish running work (signal again to kill now)', 'stopping', ''),
    ('stopped', 'stopped', ''),
]


@pytest.mark.parametrize('line, kind, block', LINES)
def test_each_node_line_has_its_kind_and_block(line, kind, block):
    assert tl.classify(line) == (kind, block)


def test_the_printer_records_every_event_as_plain_text_and_prints_it_as_before():
    out = io.StringIO()
    printer = Printer(console=Console(file=out, width=500, force_terminal=False))
    printer.event('[bold green]cluster ready[/] in 0.9s: greeting 2/2')
    printer.error('web: cannot listen on [::]:80')
    assert [(e['id'], e['kind'], e['block'], e['text']) for e in printer.timeline.entries] == [
        (1, 'ready', '', 'cluster ready in 0.9s: greeting 2/2'), (2, 'event', 'web', 'web: cannot listen on [::]:80')]
    lines = out.getvalue().splitlines()
    assert [line[9:] for line in lines] == ['node cluster ready in 0.9s: greeting 2/2', 'node web: cannot listen on [::]:80']


def test_entries_after_a_cursor_oldest_first_bounded_and_the_ring_forgets_the_oldest():
    clock = iter(range(100, 200)).__next__
    timeline = tl.Timeline(size=5, clock=clock)
    for n in range(1, 8):
        timeline.record('greeting.%d started (pid %d)' % (n, n))
    assert timeline.since(0)['cursor'] == 7
    assert [e['id'] for e in timeline.since(0)['entries']] == [3, 4, 5, 6, 7]  # 1 and 2 are gone
    assert timeline.since(4, limit=2) == {'cursor': 6, 'entries': [
        {'id': 5, 'time': 104, 'block': 'greeting', 'kind': 'started', 'text': 'greeting.5 started (pid 5)'},
        {'id': 6, 'time': 105, 'block': 'greeting', 'kind': 'started', 'text': 'greeting.6 started (pid 6)'}]}
    assert timeline.since(7) == {'cursor': 7, 'entries': []}
    assert timeline.since(50) == {'cursor': 7, 'entries': []}  # a cursor of an earlier node: start again from 7


def test_the_verb_checks_its_body_and_caps_the_reply():
    timeline = tl.Timeline()
    for n in range(tl.MAX_REPLY + 10):
        timeline.record('x.%d started (pid %d)' % (n, n))
    assert len(tl.verb(timeline, {'since': 0, 'limit': 10_000})['entries']) == tl.MAX_REPLY
    assert tl.verb(timeline, None)['cursor'] == tl.MAX_REPLY
    for body, why in (([], 'must be a mapping'), ({'since': -1}, "'since' must be a whole number >= 0"),
                      ({'limit': 'ten'}, "'limit' must be a whole number >= 0"), ({'since': True}, "'since'")):
        with pytest.raises(UsageError, match=why):
            tl.verb(timeline, body)


def test_node_timeline_over_the_control_socket(tmp_path):
    async def scenario(node, call, endpoint):
        node.printer.event('web.1 started (pid 101)', 'dim')
        node.printer.event('web: 1 → 2 processes (fannode scale)', 'cyan')
        reply = await call('node.timeline', {'since': 0, 'limit': 10})
        assert reply.body['cursor'] == 2
        assert [(e['kind'], e['block'], e['text']) for e in reply.body['entries']] == [
            ('started', 'web', 'web.1 started (pid 101)'), ('scaled', 'web', 'web: 1 → 2 processes (fannode scale)')]
        assert (await call('node.timeline', {'since': 2})).body == {'cursor': 2, 'entries': [], 'pid': os.getpid()}
        bad = await call('node.timeline', {'since': 'x'})
        assert bad.body['message'] == "'since' must be a whole number >= 0, got 'x'"
    run(tmp_path, scenario)
