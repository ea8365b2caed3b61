"""Cluster-wide unique ids with real processes: two drawing at once, the hub killed and
started again in the middle, and still no id handed out twice."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from conftest import Cluster, output, wait_until

pytestmark = pytest.mark.e2e

DRAW = '''
import os, sys, time, fannode
out = open(sys.argv[1], 'w')
for i in range(int(sys.argv[2])):
    out.write('%d\\n' % fannode.unique_id('orders'))
    if i == 2000:  # half-way through a block: the test kills the hub, then says go
        out.flush()
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.01)
out.close()
'''


def drawn(path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except FileNotFoundError:
        return []


def test_two_processes_draw_50000_ids_each_through_a_hub_restart_without_a_duplicate(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        cluster.start_hub()
        outs, go = [tmp_path / 'a.ids', tmp_path / 'b.ids'], tmp_path / 'go'
        env = dict(cluster.env, FANNODE_ID_WAIT='30')
        drawers = []
        for out in outs:
            log = open(str(out) + '.log', 'w+')
            drawers.append(subprocess.Popen([sys.executable, '-c', DRAW, str(out), '50000', str(go)], env=env, cwd=tmp_path,
                                            stdout=log, stderr=subprocess.STDOUT))
            drawers[-1].log = log
            cluster.procs.append(drawers[-1])
        wait_until(lambda: all(len(drawn(out)) > 2000 for out in outs), 60, message='both to draw ids')
        cluster.hub.send_signal(signal.SIGKILL)  # not even a clean stop
        cluster.hub.wait(10)
        go.touch()  # they draw on with no hub: past their block, they wait for one
        assert all(proc.poll() is None for proc in drawers)  # the restart is in the middle
        cluster.start_hub()  # the same port and journal
        for proc in drawers:
            assert proc.wait(120) == 0, output(proc)
        ids = [drawn(out) for out in outs]
        assert [len(i) for i in ids] == [50000, 50000]
        assert all(i == sorted(i) and len(set(i)) == len(i) for i in ids)  # increasing per caller
        assert not set(ids[0]) & set(ids[1])  # and no id in both
    finally:
        cluster.stop()
