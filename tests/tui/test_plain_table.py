"""fannode/cli/plaintable.py: `fannode discover -i`'s table, drawn without rendering every
cell through rich, prints exactly what rich's `Table(*headers, box=None)` prints: any
widths (wrapped and cut cells in a narrow terminal), a real terminal's styles or none,
cells with markup, emoji codes, wide characters, newlines."""
from __future__ import annotations

import dataclasses
import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from fannode.cli.plaintable import print_table
from fannode.core.instance import InstanceInfo

WORD = st.text(alphabet='abcxyz019.-/:_é世[]', max_size=14)
CELL = st.one_of(WORD, st.lists(WORD, min_size=1, max_size=3).map(' '.join),
                 st.sampled_from(['tcp://127.0.0.1:4010', ':smile:', '[bold]x[/]', 'a\nb', 'no (needs Orders)', '']))


def both(headers: list[str], rows: list[list[str]], width: int, terminal: bool) -> tuple[str, str]:
    """What rich's table prints, and what print_table prints, on like consoles."""
    outs = []
    for draw in ('rich', 'plain'):
        buffer = io.StringIO()
        console = Console(file=buffer, width=width, force_terminal=terminal, soft_wrap=True, highlight=False,
                          color_system='truecolor' if terminal else None)
        try:
            if draw == 'rich':
                table = Table(*headers, box=None)
                for row in rows:
                    table.add_row(*row)
                console.print(table)
            else:
                print_table(console, headers, rows)
        except Exception as e:  # bad markup ('[/]'): the same error either way
            outs.append(type(e).__name__)
            continue
        outs.append(buffer.getvalue())
    return outs[0], outs[1]


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(
    st.lists(WORD.filter(bool), min_size=n, max_size=n),
    st.lists(st.lists(CELL, min_size=n, max_size=n), max_size=12))),
    st.integers(10, 200), st.booleans())
def test_it_prints_what_rich_prints(table, width, terminal):
    headers, rows = table
    expected, got = both(headers, rows, width, terminal)
    assert got == expected


def test_discover_s_instance_table_at_80_and_200_columns():
    headers = ['service', 'instance', 'endpoint', 'pid', 'host', 'version', 'up', 'ready']
    rows = [['Greeting', '%012x' % i, 'tcp://127.0.0.1:%d' % (20000 + i), str(4000 + i), 'vm', '1.%d.0' % (i % 2),
             '%ds' % i, 'yes' if i % 7 else 'no (needs Orders, Payments)'] for i in range(300)]
    for width in (80, 200):
        for terminal in (False, True):
            expected, got = both(headers, rows, width, terminal)
            assert got == expected


def test_an_instance_map_is_as_dataclasses_would_make_it():
    info = InstanceInfo('a1', 'tcp://h:1', ['S', 'T'], 7, 'h', '1.0', 2.5, False, {'deps': [{'x': 1}]})
    data = info.to_dict()
    assert data == dataclasses.asdict(info) and list(data) == list(dataclasses.asdict(info))
    data['meta']['deps'][0]['x'] = 2
    data['services'].append('U')
    assert info.meta == {'deps': [{'x': 1}]} and info.services == ['S', 'T']  # copies, as asdict's
    assert InstanceInfo.from_dict(dict(info.registration(), unknown=1)) == dataclasses.replace(info)
