"""`fannode top`'s app driven with Pilot against a source serving fixed data: the table,
keys, refreshes in place, the log pane and the trace view."""
from __future__ import annotations

import dataclasses

from top_helpers import FixedSource, cell, column, fixed_snapshot, run, table_rows, until

from fannode.tui.app import TopApp
from fannode.tui.rows import Row
from fannode.tui.screens.help import HelpScreen
from fannode.tui.screens.logs import LogScreen
from fannode.tui.screens.trace import TraceScreen
from fannode.tui.table import RowTable


def drive(test) -> FixedSource:
    """Run `await test(pilot, app, source)` against the app on a FixedSource."""
    source = FixedSource()
    app = TopApp(source)
    run(app, lambda pilot: test(pilot, app, source))
    return source


async def open_logs(pilot, lines: int = 5) -> RowTable:
    """`l` on the selected row: the log pane's table, once it shows `lines` lines."""
    await pilot.press('l')
    assert isinstance(pilot.app.screen, LogScreen)
    logs = pilot.app.screen.table
    await until(pilot, lambda: logs.row_count == lines, message='%d log lines' % lines)
    return logs


def test_every_service_block_and_instance_is_a_row_with_its_figures():
    async def test(pilot, app, source):
        rows = table_rows(app)
        assert list(rows) == [
            's:Greeting', 'i:Greeting:' + '01' * 16, 'i:Greeting:' + '02' * 16, 'i:Greeting:' + '03' * 16,
            'p:s:Greeting:4199', 's:Listen', 'i:Listen:' + '11' * 16, 'i:Listen:' + '12' * 16,
            'b:hub', 'p:b:hub:4001', 'b:redis', 'p:b:redis:4300', 'b:web']
        # service: instances n/desired, restarts from the node, sums, worst p99
        assert rows['s:Greeting'][:11] == ['Greeting', '3/4', '', '', 'degraded', '', '2', '11.0', '92.0',
                                           '40.0', '2']
        assert rows['s:Greeting'][11] == '7.5'
        # an instance: its own figures; rpc/s from the call counts of two polls, builtins left out
        assert rows['i:Greeting:' + '03' * 16] == ['  greeting.3', '', '4103', 'vm', 'running', '1h02m', '',
                                                  '1.5', '40.0', '30.0', '2', '7.5', '0.0', '-']
        assert rows['i:Greeting:' + '02' * 16][4:] == ['unresponsive', '1h02m', '', '-', '-', '-', '-', '-', '-', '-']
        assert rows['p:s:Greeting:4199'][4] == 'starting'          # started by the node, not registered yet
        assert rows['i:Listen:' + '11' * 16][3] == 'db1'           # another machine: discovery only
        assert rows['b:web'][:7] == ['web (node)', '0/2', '', '', 'failed', '', '11']
        assert 'node node.yml (pid 4000)' in str(app.main.query_one('#summary').render())
    drive(test)


def test_a_refresh_updates_cells_in_place_and_keeps_the_cursor_on_its_row():
    async def test(pilot, app, source):
        table = app.main.table
        redrawn = []
        refresh = table.refresh_line
        table.refresh_line = lambda y: redrawn.append(y) or refresh(y)
        await pilot.press('down', 'down', 'down')
        redrawn.clear()
        assert app.main.selected().name == 'greeting.3'
        source.deliver('snapshot', fixed_snapshot(calls=50))  # same rows, new numbers
        await until(pilot, lambda: cell(app, 'i:Greeting:' + '03' * 16, 'rps') == '180', message='new rpc/s')
        # only the rows whose figures changed are drawn again (the header is line 0)
        assert sorted(redrawn) == [1, 2, 4, 6, 7, 8] and table.cursor_row == 3
        snapshot = fixed_snapshot(extra=1)  # an instance more, and a new service above
        auth = Row(key='s:Auth', kind='service', name='Auth', count='0/0', state='running')
        source.deliver('snapshot', dataclasses.replace(snapshot, rows=(auth, *snapshot.rows)))
        await until(pilot, lambda: 'i:Greeting:' + '04' * 16 in table_rows(app), message='the new instance')
        assert app.main.selected().name == 'greeting.3' and table.cursor_row == 4
        await pilot.press('up')
        gone = dataclasses.replace(fixed_snapshot(), rows=tuple(
            r for r in fixed_snapshot().rows if r.name != 'greeting.2'))
        source.deliver('snapshot', gone)  # the selected instance went: its service is selected
        await until(pilot, lambda: 'i:Greeting:' + '02' * 16 not in table_rows(app), message='greeting.2 gone')
        assert app.main.selected().key == 's:Greeting'
    drive(test)


def test_plus_minus_r_and_shift_r_ask_the_source_and_the_status_line_says_how_it_went():
    async def test(pilot, app, source):
        await pilot.press('plus')
        assert source.calls[-1] == ('scale', 's:Greeting', 1)
        assert str(app.main.query_one('#status').render()) == 'greeting: 4 → 5 processes'
        await pilot.press('down', 'minus', 'equals_sign')
        assert source.calls[-2:] == [('scale', 'i:Greeting:' + '01' * 16, -1), ('scale', 'i:Greeting:' + '01' * 16, 1)]
        await pilot.press('r')
        assert source.calls[-1] == ('restart', 'i:Greeting:' + '01' * 16)
        status = app.main.query_one('#status').render()
        assert str(status).startswith('no node running for node.yml') and 'red' in str(status.spans[0].style)
        await pilot.press('R')  # on an instance: its service
        assert source.calls[-1] == ('restart', 's:Greeting')
    drive(test)


def test_the_log_pane_follows_the_selected_row_filters_by_level_and_searches():
    async def test(pilot, app, source):
        logs = await open_logs(pilot)  # five lines at INFO and above
        screen = app.screen
        assert source.calls[-1] == ('follow', 's:Greeting', 'INFO')
        await pilot.press('4')  # ERROR and above: asked of the source again
        assert source.calls[-1] == ('follow', 's:Greeting', 'ERROR')
        await until(pilot, lambda: logs.row_count == 2, message='two lines at ERROR and above')
        await pilot.press('1')
        await until(pilot, lambda: logs.row_count == 6, message='all six lines')
        await pilot.press('slash')
        await pilot.press(*'JOE', 'enter')  # in messages, loggers and trace ids, any case
        messages = column(logs, 'msg')
        assert messages == ['Saying hi to Joe', 'About to greet Joe'], messages
        assert 'search: JOE' in str(screen.query_one('#log-title').render())
        await pilot.press('slash', 'ctrl+a', 'ctrl+k', 'enter')  # an empty search clears it
        await until(pilot, lambda: logs.row_count == 6, message='the search cleared')
        await pilot.press('escape')
        assert app.screen is app.main and source.calls[-1] == ('stop_logs',)
    drive(test)


def test_a_log_line_opens_its_trace_path_and_logs_side_by_side():
    async def test(pilot, app, source):
        logs = await open_logs(pilot)
        logs.move_cursor(2)  # the WARNING line, trace b2…
        await pilot.press('enter')
        screen = app.screen
        assert isinstance(screen, TraceScreen) and source.calls[-1] == ('trace', 'b2' * 16)
        spans, lines = screen.query_one('#spans'), screen.query_one('#trace-logs')
        await until(pilot, lambda: spans.row_count == 3, message='three spans')
        assert column(spans, 'name') == [
            'GET /greet', '  └ Greeting.greet', '    └ Listen.on_greeted']
        assert lines.row_count == 4 and str(screen.query_one('#trace-status').render()) == '3 spans, 4 log lines'
        spans.move_cursor(1)
        await pilot.press('enter')  # only that span's logs
        assert column(lines, 'msg') == ['Saying hi to joe']
        await pilot.press('enter')  # again: all
        assert lines.row_count == 4
        await pilot.press('escape', 'escape')
        assert app.screen is app.main
    drive(test)


def test_t_opens_the_trace_view_for_a_typed_trace_id():
    async def test(pilot, app, source):
        await pilot.press('t')
        assert isinstance(app.screen, TraceScreen) and app.screen.query_one('#trace-id').has_focus
        await pilot.press(*'c3c3', 'enter')
        assert source.calls[-1] == ('trace', 'c3c3')
        await until(pilot, lambda: app.screen.query_one('#spans').row_count == 3, message='the spans')
    drive(test)


def test_clicking_a_trace_id_in_the_log_pane_opens_it():
    async def test(pilot, app, source):
        logs = await open_logs(pilot)
        await pilot.click('#logs', offset=(20, 1 + 3))  # the message of the fourth line: selects it
        assert logs.cursor_row == 3 and isinstance(app.screen, LogScreen)
        # its trace id (ERROR, trace b2…): past time, level and instance, each with its padding
        await pilot.click('#logs', offset=(14 + 10 + 18 + 2, 1 + 3))
        await until(pilot, lambda: isinstance(app.screen, TraceScreen), message='the trace view')
        assert source.calls[-1] == ('trace', 'b2' * 16)
    drive(test)


def test_help_shows_the_keys_and_q_quits():
    async def test(pilot, app, source):
        await pilot.press('question_mark')
        assert isinstance(app.screen, HelpScreen)
        await pilot.press('x')
        assert app.screen is app.main
        await pilot.press('q')
        await until(pilot, lambda: not app.is_running, message='the app to quit')
    assert drive(test).calls[-1] == ('stop',)


def test_span_trees_from_hostile_records_neither_break_nor_recurse_without_end():
    from fannode.tui.screens.trace import span_tree
    chain = [{'kind': 'span', 'span': 's%d' % i, 'parent': 's%d' % (i - 1), 'ts': i} for i in range(1, 20000)]
    chain.append({'kind': 'span', 'span': 's0', 'parent': '', 'ts': 0})
    tree = span_tree(chain)
    assert len(tree) == 20000 and tree[-1] == (19999, chain[-2])
    odd = [{'kind': 'span', 'span': ['x'], 'parent': {}, 'ts': 'noon'}, {'kind': 'span', 'span': 'a', 'parent': 'a'}]
    assert [depth for depth, _ in span_tree(odd)] == [0, 0]
