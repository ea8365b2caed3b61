"""The watchdog kills the process groups it was told about when the node's pipe closes,
however the node went; the node's sweep stops what a dead process left behind."""
import os
import signal
import subprocess
import time

import psutil
import pytest

from conftest import wait_until
from fannode.node.orphans import Groups


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def kill_trees():
    """Every tree a test started goes at its end, whatever the test did."""
    yield
    while STARTED:
        leader = STARTED.pop()
        try:
            os.killpg(leader.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        leader.wait(5)


def tree(tmp_path, name='tree'):
    """A process in a session of its own with two children, as circus starts them."""
    pids = tmp_path / name
    leader = subprocess.Popen(['sh', '-c', 'trap "" TERM; sleep 1000 & echo $! >> %s; sleep 1000 & echo $! >> %s; '
                               'wait' % (pids, pids)], start_new_session=True)
    STARTED.append(leader)
    wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 2, message='two children')
    kids = [psutil.Process(int(p)) for p in pids.read_text().split()]
    return leader, kids


def gone(procs):
    def dead(p):
        try:
            return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    return all(dead(p) for p in procs)


@pytest.fixture
def groups():
    g = Groups()
    yield g
    g.kill_all()
    g.close_pipe()


def test_the_watchdog_kills_the_groups_when_the_pipe_closes(tmp_path, groups):
    groups.start_watchdog()
    leader, kids = tree(tmp_path)
    other, spared = tree(tmp_path, 'other')
    groups.add(leader.pid, 10.0)
    groups.add(other.pid, 10.0)
    groups.forget(other.pid)  # gone from the node's view: not the watchdog's to kill
    watchdog = groups.watchdog
    os.close(groups.pipe)  # as when the node dies
    groups.pipe = None
    watchdog.wait(5)
    assert leader.wait(5) == -signal.SIGKILL
    wait_until(lambda: gone(kids), message='the children to be killed')
    assert not gone(spared)


def test_a_killed_watchdog_is_replaced_and_told_everything(tmp_path, groups):
    groups.start_watchdog()
    leader, kids = tree(tmp_path)
    groups.add(leader.pid, 10.0)
    first = groups.watchdog
    first.kill()
    first.wait(5)
    groups.add(12345678, 1.0)  # the next write finds the pipe broken
    assert groups.watchdog is not first and groups.watchdog.poll() is None
    groups.forget(12345678)
    os.close(groups.pipe)
    groups.pipe = None
    groups.watchdog.wait(5)
    leader.wait(5)
    wait_until(lambda: gone(kids), message='the new watchdog to kill the first group')


def test_the_sweep_stops_what_a_dead_process_left_then_kills_it(tmp_path, groups):
    leader, kids = tree(tmp_path)
    groups.add(leader.pid, 0.3)
    groups.sweep({leader.pid})  # its leader runs: nothing happens
    assert not gone(kids)
    leader.kill()
    leader.wait(5)
    groups.sweep(set())  # SIGTERM, which these children ignore
    assert leader.pid in groups.lingering and not gone(kids)
    time.sleep(0.35)
    groups.sweep(set())  # past the grace: SIGKILL
    wait_until(lambda: gone(kids), message='the children to be killed')
    assert groups.grace == {} and groups.lingering == {}


def test_a_group_being_stopped_is_killed_its_grace_after_the_first_sigterm(tmp_path, groups):
    """Whether its leader runs or not: a second SIGTERM, or the sweep, gives it no more time."""
    leader, kids = tree(tmp_path)  # all of it ignores SIGTERM
    groups.add(leader.pid, 0.5)
    assert groups.stop(leader.pid)
    deadline = groups.lingering[leader.pid]  # grace after the first SIGTERM
    groups.stop(leader.pid)
    groups.sweep({leader.pid})
    assert groups.lingering[leader.pid] == deadline  # neither gave it more time
    leaders = lambda: {leader.pid} if leader.poll() is None else set()  # noqa: E731
    wait_until(lambda: groups.sweep(leaders()) or gone(kids) and leader.poll() == -signal.SIGKILL,
               timeout=10, interval=0.02, message='the group to be killed when its grace is over')
    assert groups.grace == {} and groups.lingering == {}
