"""The views' cases of `python -m bench` (issue 25): `top` (fannode top watching instances a
stand-in process registers and answers for) and `discover` (the CLI against a hub with many
fake registrations), run quick: their rows and JSON. Nothing here is about speed."""
from __future__ import annotations

import shutil

import pytest

from bench.standin import metrics
from test_bench_quick import run_bench, saved_run

pytestmark = pytest.mark.e2e


def test_a_stand_in_answers_get_metrics_as_a_greeting_instance_and_its_figures_move():
    first, later = metrics(3, started=0.0), metrics(3, started=-10.0)
    assert set(first) == {'rpc', 'event', 'http', 'custom', 'process'}
    assert set(first['rpc']['Greeting.greet']) >= {'calls', 'errors', 'p99_ms', 'buckets'}
    assert later['rpc']['Greeting.greet']['calls'] > first['rpc']['Greeting.greet']['calls']


@pytest.mark.timeout(200)
def test_the_top_and_discover_cases_print_and_save_their_rows(tmp_path):
    done = run_bench('--quick', '--only', 'top,discover', '--results-dir', str(tmp_path), deadline=150)

    assert done.returncode == 0, done.stderr[-3000:]
    run = saved_run(tmp_path)
    assert {name: case['status'] for name, case in run['cases'].items()} == {'top': 'ok', 'discover': 'ok'}
    rows = {row['key']: row for row in run['rows']}
    assert set(rows) == {'top.cpu.headless', 'top.cpu.tmux', 'discover.plain', 'discover.json',
                         'discover.instances'}
    assert 'stand-in' in rows['top.cpu.headless']['what'] and '20 instances' in rows['top.cpu.headless']['what']
    if shutil.which('tmux') is None:
        assert rows['top.cpu.tmux']['note'].startswith('skipped')
    for row in rows.values():
        if not row['note']:
            assert row['fannode']['median'] > 0 and row['target']
    for key in ('discover.plain', 'discover.json', 'discover.instances'):
        assert '200 registered' in rows[key]['what'] and len(rows[key]['fannode']['samples']) == 2  # --quick: 2 runs
        assert rows[key]['ratio']['median'] > 0  # beside the same command with 10 registered
