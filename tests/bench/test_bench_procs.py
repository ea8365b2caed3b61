"""bench/procs.py: where each role's processes run (the CPU pinning every case uses) and
the memory figures (RSS, PSS, USS) the idle-instance and node rows read."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench import procs
from bench.procs import ANY, BROKER, CLIENT, SERVER, BenchError, Procs, cpus_for, memory, pin

TWO_CPUS = len(os.sched_getaffinity(0)) > 1


@pytest.fixture
def layout(monkeypatch):
    def use(cpus, pinning=True):
        monkeypatch.setattr(procs, 'CPUS', cpus)
        monkeypatch.setattr(procs, 'PINNING', pinning)
    return use


def test_on_two_cpus_the_callers_and_brokers_share_one_and_the_server_has_the_other(layout):
    layout([0, 1])
    assert (cpus_for(CLIENT), cpus_for(SERVER), cpus_for(BROKER), cpus_for(ANY)) == ([0], [1], [0], [0, 1])
    assert cpus_for(SERVER, index=1) == [0]  # the second of two web servers
    assert 'callers on CPU 0, servers on CPU 1' in procs.pinning()


def test_with_more_cpus_the_broker_gets_one_of_its_own(layout):
    layout([2, 3, 5, 7])
    assert (cpus_for(CLIENT), cpus_for(SERVER), cpus_for(BROKER)) == ([2], [7], [5])
    assert cpus_for(SERVER, index=1) == [5]


@pytest.mark.parametrize('cpus, pinning, why', [([0], True, '1 CPU'), ([0, 1], False, '--no-pin')])
def test_with_one_cpu_or_no_pin_every_role_gets_every_cpu(layout, cpus, pinning, why):
    layout(cpus, pinning)
    assert all(cpus_for(role) == cpus for role in (CLIENT, SERVER, BROKER, ANY))
    assert procs.pinning() == 'CPU pinning off (%s)' % why


@pytest.mark.skipif(not TWO_CPUS, reason='one CPU: nothing to pin')
def test_started_processes_run_on_their_role_cpus_and_unpinned_ones_on_all(tmp_path):
    everything = os.sched_getaffinity(0)
    group = Procs(tmp_path)
    try:
        server = group.start('server', [sys.executable, '-c', 'import time; time.sleep(60)'], cpu=SERVER)
        pin(CLIENT)  # as the runner pins the bench process: children must not inherit it unless told
        try:
            loose = group.start('loose', [sys.executable, '-c', 'import time; time.sleep(60)'])
            assert os.sched_getaffinity(0) == set(cpus_for(CLIENT))
        finally:
            pin(ANY)
        assert os.sched_getaffinity(server.pid) == set(cpus_for(SERVER))
        assert os.sched_getaffinity(loose.pid) == everything
        assert group.pinned == {'server': cpus_for(SERVER)}  # what the run's JSON shows
    finally:
        group.stop_all()


@pytest.mark.skipif(not TWO_CPUS, reason='one CPU: nothing to pin')
def test_pin_before_exec_reaches_the_threads_a_program_starts_at_once():
    code = 'import os, threading; t = threading.Thread(target=lambda: None); t.start(); print(sorted(os.sched_getaffinity(0)))'
    out = subprocess.run([sys.executable, '-c', code], preexec_fn=lambda: pin(SERVER), capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == str(cpus_for(SERVER))


def test_memory_reads_rss_pss_and_uss_of_a_process():
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        m = memory(child.pid)
        assert set(m) == {'rss', 'pss', 'uss'}
        assert 0 < m['uss'] <= m['pss'] <= m['rss'] < 1024  # MiB
    finally:
        child.kill()
        child.wait()
    with pytest.raises(BenchError, match='exited'):
        memory(child.pid)
