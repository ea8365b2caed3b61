"""The `tail` case of `python -m bench`: `fannode tail --json` following 5,000 lines/s via
the hub and via a node, as rows of the one table. Nothing here is about speed: the rows
are there, with figures, and the run's JSON has every round's counts."""
from __future__ import annotations


import pytest

from test_bench_quick import run_bench, saved_run

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(160)
def test_the_tail_case_reports_lines_delivered_via_the_hub_and_via_the_node(tmp_path):
    done = run_bench('--quick', '--only', 'tail', '--results-dir', str(tmp_path))

    assert done.returncode == 0, done.stderr[-3000:]
    run = saved_run(tmp_path)
    assert run['cases']['tail']['status'] == 'ok'
    rows = {row['key']: row for row in run['rows']}
    for way in ('hub', 'node'):
        assert rows['tail.%s.delivered' % way]['fannode']['median'] > 0
        assert rows['tail.%s.rate' % way]['anchor_figure']['median'] == 5000
        assert rows['tail.%s.tail_cpu' % way]['fannode'] is not None
    rounds = run['cases']['tail']['details']['tail']
    assert len(rounds['hub']) == len(rounds['node']) == 2  # --quick: 2 rounds
    assert all(r['rate'] == 5000 and r['logged'] > 0 for r in rounds['hub'] + rounds['node'])
    assert 'fannode tail via the hub' in done.stdout
