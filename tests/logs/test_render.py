"""`fannode tail` lines and `fannode trace` trees from records that came over the network:
whatever a record holds, it never drives the terminal and never breaks the view."""
from __future__ import annotations

import io

from rich.console import Console

from fannode.logs.render import DEEPEST, LineFormat, trace_tree
from fannode.logs.spans import span_tree

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


def rendered(tree) -> list[str]:
    console = plain_console()
    console.print(tree)
    return console.file.getvalue().splitlines()


def test_a_trace_as_long_as_a_chain_of_calls_gets_is_shown_whole():
    """trace_tree recursed once per level: a chain of 1,000 spans (what one log hub keeps of
    a trace) raised RecursionError. Deep levels line up, with their depth, so rich shows them."""
    chain = [{'kind': 'span', 'span': 's%d' % i, 'parent': 's%d' % (i - 1), 'ts': i, 'type': 'rpc', 'name': 'n%d' % i}
             for i in range(1, 20000)]
    chain.append({'kind': 'span', 'span': 's0', 'ts': 0, 'type': 'rpc', 'name': 'n0'})
    chain.append({'kind': 'log', 'span': 's19999', 'ts': 20000, 'msg': 'at the bottom'})
    lines = rendered(trace_tree('t' * 32, chain))
    assert '20000 span(s)' in lines[0] and len(lines) == 1 + 20000 + 1
    assert [i for i in range(20000) if ' n%d ' % i not in lines[i + 1]] == []
    assert 'depth 19999' in lines[-2] and 'at the bottom' in lines[-1]
    assert max(len(line) - len(line.lstrip(' │├└─')) for line in lines) <= 4 * (DEEPEST + 1)


def test_spans_whose_parents_go_in_a_circle_are_shown_with_their_logs():
    circle = [{'kind': 'span', 'span': 'a', 'parent': 'b', 'ts': 1, 'name': 'first'},
              {'kind': 'span', 'span': 'b', 'parent': 'a', 'ts': 2, 'name': 'second'},
              {'kind': 'span', 'span': 'c', 'parent': 'c', 'ts': 3, 'name': 'itself'},
              {'kind': 'log', 'span': 'b', 'ts': 2.5, 'msg': 'in the circle'}]
    lines = rendered(trace_tree('t' * 32, circle))
    assert '3 span(s)' in lines[0]
    assert [line.split(maxsplit=2)[:2] for line in lines[1:]] == [
        ['├──', 'first'], ['│', '└──'], ['│', '└──'], ['└──', 'itself']]
    assert 'second' in lines[2] and 'in the circle' in lines[3]


def test_the_span_walk_shows_every_record_once_whatever_the_links():
    spans = [{'kind': 'span', 'span': 'r', 'ts': 0}, {'kind': 'span', 'span': 'x', 'parent': 'r', 'ts': 2},
             {'kind': 'span', 'span': 'x', 'parent': 'r', 'ts': 1},   # the same id twice
             {'kind': 'span', 'span': 'y', 'parent': 'x', 'ts': 3},
             {'kind': 'span', 'span': 'p', 'parent': 'q', 'ts': 5}, {'kind': 'span', 'span': 'q', 'parent': 'p', 'ts': 4},
             {'kind': 'span', 'span': 'z', 'parent': 'q', 'ts': 6},   # hangs off the circle
             {'kind': 'log', 'span': 'y', 'ts': 3.5}, {'kind': 'log', 'span': 'nowhere', 'ts': 9}]
    tree = span_tree(spans, logs=True)
    assert [(d, r.get('span'), r['ts']) for d, r in tree] == [
        (0, 'r', 0), (1, 'x', 1), (2, 'y', 3), (3, 'y', 3.5), (1, 'x', 2), (0, 'nowhere', 9),
        (0, 'q', 4), (1, 'p', 5), (1, 'z', 6)]
    assert len(span_tree(spans)) == 7
