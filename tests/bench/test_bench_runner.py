"""bench/runner.py: how cases run one after another. A case's processes stop while the next
case starts its own, but the next one measures nothing before they are gone; `--quick`
measures secondary rows in its first round only, the full run every row every round."""
from __future__ import annotations

import io
import shutil
import sys

import pytest
from rich.console import Console

from bench.procs import BenchError
from bench.runner import Context, progress_display, run_cases

# Stops a second after SIGTERM, as an instance that drains does.
SLOW_TO_STOP = '''
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1.0), sys.exit(0)))
print('ready', flush=True)
time.sleep(60)
'''


@pytest.fixture
def context():
    with progress_display(Console(file=io.StringIO())) as progress:
        contexts = []

        def make(quick: bool) -> Context:
            contexts.append(Context(quick, set(), progress))
            return contexts[-1]
        yield make
    for ctx in contexts:
        shutil.rmtree(ctx.dir, ignore_errors=True)


def counting(calls: list[str], name: str):
    def measure(warmup: bool) -> float:
        calls.append(name + (' warm-up' if warmup else ''))
        return 1.0
    return measure


@pytest.mark.parametrize('quick, secondary', [(True, 1), (False, 3)])
def test_quick_measures_the_secondary_rows_in_the_first_round_only(context, quick, secondary):
    ctx = context(quick)
    calls: list[str] = []
    samples = ctx.rounds({'main': counting(calls, 'main'), 'side': counting(calls, 'side')}, reps=3, once={'side'})

    assert (len(samples['main']), len(samples['side'])) == (3, secondary)
    assert calls[:2] == ['main warm-up', 'side warm-up']  # both warmed up, in either mode
    assert calls[2:4] == ['main', 'side']  # the first round has every row, in turn


def test_the_next_case_measures_only_once_the_last_cases_processes_are_gone(context):
    ctx = context(True)
    started = {}
    seen_alive = []

    def first(ctx: Context) -> list:
        proc = started['proc'] = ctx.procs.start('slow', [sys.executable, '-c', SLOW_TO_STOP])
        proc.wait_for('ready', 30)
        return []

    def second(ctx: Context) -> list:
        ctx.rounds({'x': lambda warmup: seen_alive.append(started['proc'].popen.poll() is None) or 1.0})
        return []

    rows, info = run_cases(ctx, {'first': first, 'second': second}, [])

    assert seen_alive and not any(seen_alive)
    assert started['proc'].popen.returncode == 0  # stopped by SIGTERM, gracefully, not killed
    assert info['first']['stop_seconds'] is not None and info['second']['status'] == 'ok'
    assert not (ctx.dir / 'first').exists()  # the logs of a case that did not fail are removed
    assert [text for _, text in info['second']['steps']][:2] == ['warming up: x', 'round 1/2: x']


def test_a_failed_case_keeps_its_logs_and_the_run_goes_on(context):
    ctx = context(True)

    def failing(ctx: Context) -> list:
        ctx.procs.start('short', [sys.executable, '-c', 'print("a line for the log")']).wait_for('a line', 30)
        raise BenchError('it broke')

    rows, info = run_cases(ctx, {'failing': failing, 'after': lambda ctx: []}, [])

    assert info['failing']['status'] == 'failed' and info['after']['status'] == 'ok'
    assert 'failed: it broke' in rows[0].note
    assert 'a line for the log' in (ctx.dir / 'failing' / 'short.log').read_text()
