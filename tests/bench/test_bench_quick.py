"""`python -m bench --quick`, the benchmark runner, as a smoke test: the selected cases run,
print their rows and save them as JSON. Nothing here is about speed.

The selection leaves out what needs more than the package: RabbitMQ, the anchors venv
(nameko, zerorpc) and wrk are treated as missing (--without), which also covers the
"skipped" rows. The web and node cases take longer and are left to `make bench`."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.e2e

CASES = ('rpc', 'events', 'payload')
DEADLINE = 100.0  # seconds; about 10 on a 2-core machine
ROWS = ('RPC sequential', 'RPC 50 in flight', 'idle instance RSS', 'RPC latency, 1 MB echo',
        'events end to end, hub backend')


def run_bench(*args: str, deadline: float = DEADLINE) -> subprocess.CompletedProcess:
    """The bench as a subprocess, with a deadline. On timeout it gets SIGTERM, so it stops
    every process it started (they are in sessions of their own), then SIGKILL."""
    proc = subprocess.Popen([sys.executable, '-m', 'bench', *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail('python -m bench %s took over %gs:\n%s' % (' '.join(args), deadline, err[-3000:]))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def saved_run(results: Path) -> dict:
    """The JSON the one run wrote to `results` (its --results-dir)."""
    [path] = results.glob('*.json')
    return json.loads(path.read_text())


@pytest.mark.timeout(DEADLINE + 40)
def test_quick_run_prints_and_saves_the_rows_of_the_selected_cases(tmp_path):
    done = run_bench('--quick', '--only', ','.join(CASES), '--without', 'rabbitmq,anchors',
                     '--results-dir', str(tmp_path))

    assert done.returncode == 0, done.stderr[-3000:]
    for what in ROWS:
        assert what in done.stdout
    run = saved_run(tmp_path)
    assert run['mode'] == 'quick'
    assert {'cpu', 'cores', 'python', 'fannode_rev'} <= set(run['machine'])
    assert {'layout', 'client', 'server', 'broker'} <= set(run['pinning'])  # where callers and servers ran
    assert 'pinn' in done.stdout  # the caption says it: "pinned: …" or "CPU pinning off (…)"
    assert all('pinning' in case for case in run['cases'].values())
    assert {name: case['status'] for name, case in run['cases'].items()} == {name: 'ok' for name in CASES}
    rows = run['rows']
    assert {row['case'] for row in rows} == set(CASES)
    assert {row['what'] for row in rows} >= set(ROWS)
    for row in rows:
        if row['note'].startswith('skipped'):  # zerorpc, nameko and raw pika: left out
            assert 'left out' in row['note']
        else:
            assert row['fannode']['median'] > 0 and len(row['fannode']['samples']) >= 2  # --quick: 2 rounds
            assert row['ratio'] is None or row['ratio']['median'] > 0
    skipped = {row['key'] for row in rows if row['note'].startswith('skipped')}
    assert {'rpc.sequential.zerorpc', 'rpc.sequential.nameko', 'events.amqp'} <= skipped
