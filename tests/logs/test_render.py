"""`fannode tail` lines and `fannode trace` trees from records that came over the network:
whatever a record holds, it never drives the terminal and never breaks the view."""
from __future__ import annotations

import io

from rich.console import Console

from fannode.logs.render import LineFormat, trace_tree

HOSTILE = 'GET /hello\x1b]0;owned\x07\x1b[2J\r'


def plain_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, color_system=None, width=200)


def test_a_tail_line_shows_control_characters_instead_of_sending_them():
    line = LineFormat(plain_console()).line({
        'kind': 'log', 'ts': 1.5, 'service': 'We\x1bb', 'instance': 'web.1', 'level': 'INFO',
        'logger': 'fannode.web.access', 'trace': 'ab\x07cd', 'msg': HOSTILE})
    assert '\x1b' not in line and '\x07' not in line and '\r' not in line
    assert 'GET /hello\\x1b]0;owned\\x07\\x1b[2J\\x0d' in line
    assert 'We\\x1bb' in line


def test_records_of_the_wrong_shape_still_make_a_line_and_a_tree():
    form = LineFormat(plain_console())
    odd = [{'kind': 'span', 'ts': 'noon', 'span': 's1', 'type': ['rpc'], 'name': {}, 'duration_ms': 'x'},
           {'kind': 'log', 'ts': float('nan'), 'span': 's1', 'level': 7, 'msg': None},
           {'kind': 'log', 'ts': 2, 'span': ['s1'], 'level': ['INFO'], 'msg': 'a list for a level'},
           {'kind': 'log', 'ts': 1e300, 'msg': HOSTILE}]
    assert all(form.line(r) for r in odd)
    console = plain_console()
    console.print(trace_tree('t' * 32, odd))
    shown = console.file.getvalue()
    assert '\x1b' not in shown and '1 span(s)' in shown and '\\x1b[2J' in shown
