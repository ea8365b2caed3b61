"""cgroup v2 for `limits:`, on a directory laid out as the kernel lays one out (the files
are plain files here: what the node writes into them is what is checked)."""
import os

import pytest

from fannode.node import cgroups
from fannode.node.resources import Limits


def fake_cgroup(tmp_path, controllers='cpuset cpu io memory pids', enabled=''):
    root = tmp_path / 'cg'
    root.mkdir()
    (root / 'cgroup.controllers').write_text(controllers + '\n')
    (root / 'cgroup.subtree_control').write_text(enabled)
    (root / 'cgroup.procs').write_text('')
    return root


def test_own_cgroup_is_found_under_the_cgroup2_mount(tmp_path):
    (tmp_path / 'cgroup').write_text('1:memory:/x\n0::/user.slice/session-3.scope\n')
    (tmp_path / 'mountinfo').write_text(
        '25 1 0:22 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n'
        '26 1 0:23 / /sys/fs/cgroup/unified rw,relatime shared:7 - cgroup2 cgroup2 rw\n')
    found = cgroups.own_cgroup(str(tmp_path / 'mountinfo'), str(tmp_path / 'cgroup'))
    assert found == '/sys/fs/cgroup/unified/user.slice/session-3.scope'


def test_no_cgroup2_mount_means_none(tmp_path):
    (tmp_path / 'cgroup').write_text('4:memory:/x\n')
    (tmp_path / 'mountinfo').write_text('25 1 0:22 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n')
    assert cgroups.own_cgroup(str(tmp_path / 'mountinfo'), str(tmp_path / 'cgroup')) is None
    assert cgroups.own_cgroup(str(tmp_path / 'none'), str(tmp_path / 'none')) is None


def test_a_cgroup_without_the_memory_controller_is_not_used(tmp_path):
    root = fake_cgroup(tmp_path, controllers='hugetlb')
    found = cgroups.Cgroups(str(root))
    assert not found.usable and 'offers no memory, pids controller' in found.why
    assert found.place('web', 123, Limits(memory=1 << 26)) is None
    assert not found.usable and cgroups.Cgroups(None).why == 'no cgroup v2 here'


def test_each_limited_process_gets_a_cgroup_with_its_limits(tmp_path):
    root = fake_cgroup(tmp_path)
    found = cgroups.Cgroups(str(root))
    path = found.place('web', 4242, Limits(memory=64 << 20, cpu=0.5, pids=10))
    assert path == str(root / 'web.4242')
    files = {name: (root / 'web.4242' / name).read_text() for name in os.listdir(path)}
    assert files == {'memory.max': str(64 << 20), 'memory.oom.group': '1', 'pids.max': '10',
                     'cgroup.procs': '4242'}  # no cpu.max file: no cpu controller in a fake
    (root / 'web.4242' / 'memory.events').write_text('low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n')
    assert cgroups.oom_kills(path) == 1
    assert cgroups.oom_kills(str(tmp_path / 'missing')) == 0


def test_cpu_max_is_a_quota_of_the_period(tmp_path):
    root = fake_cgroup(tmp_path)
    (root / 'api.7').mkdir()
    (root / 'api.7' / 'cpu.max').write_text('max 100000')
    cgroups.Cgroups(str(root)).place('api', 7, Limits(cpu=0.5))
    assert (root / 'api.7' / 'cpu.max').read_text() == '50000 100000'


def test_a_cgroup_is_removed_once_empty(tmp_path):
    (tmp_path / 'empty').mkdir()
    assert cgroups.remove(str(tmp_path / 'empty')) and not (tmp_path / 'empty').exists()
    assert cgroups.remove(str(tmp_path / 'gone'))
    (tmp_path / 'busy').mkdir()
    (tmp_path / 'busy' / 'cgroup.procs').write_text('1')
    assert not cgroups.remove(str(tmp_path / 'busy'))  # the kernel refuses one with processes: EBUSY


# ---------------------------------------------------------------- the node's leaf, honestly


def written(monkeypatch, base):
    """Every write to a cgroup file, in order: a fake cgroup.procs keeps only the last pid,
    where the kernel's takes each one."""
    writes = []
    real = cgroups._write

    def record(path, text):
        writes.append((os.path.relpath(path, base), text))
        real(path, text)
    monkeypatch.setattr(cgroups, '_write', record)
    return writes


def test_every_process_of_the_node_moves_into_the_leaf(tmp_path, monkeypatch):
    root = fake_cgroup(tmp_path)
    writes = written(monkeypatch, tmp_path)
    monkeypatch.setattr(cgroups, 'ours', lambda: [os.getpid(), 777, 778])  # the node, its watchdog, the hub
    assert cgroups.Cgroups(str(root)).usable
    assert writes == [('cg/node/cgroup.procs', str(os.getpid())), ('cg/node/cgroup.procs', '777'),
                      ('cg/node/cgroup.procs', '778'), ('cg/cgroup.subtree_control', '+memory +pids +cpu')]


def test_controllers_already_enabled_are_left_and_the_node_still_goes_into_a_leaf(tmp_path, monkeypatch):
    # cgroup v2 lets a cgroup with controllers for its children hold no process: the node goes into the leaf anyway
    root = fake_cgroup(tmp_path, enabled='memory pids')
    writes = written(monkeypatch, tmp_path)
    monkeypatch.setattr(cgroups, 'ours', lambda: [os.getpid()])
    found = cgroups.Cgroups(str(root))
    assert found.usable and writes == [('cg/node/cgroup.procs', str(os.getpid())),
                                       ('cg/cgroup.subtree_control', '+cpu')]
    found.close()  # it leaves as it found them: only what it enabled is disabled
    assert writes[2:] == [('cg/cgroup.subtree_control', '-cpu'), ('cg/cgroup.procs', str(os.getpid()))]


def test_at_the_end_the_node_leaves_its_leaf_and_disables_what_it_enabled(tmp_path, monkeypatch):
    root = fake_cgroup(tmp_path)
    monkeypatch.setattr(cgroups, 'ours', lambda: [os.getpid()])
    found = cgroups.Cgroups(str(root))
    (root / 'node' / 'cgroup.procs').unlink()  # the kernel's files are no obstacle to rmdir
    found.close()
    assert not found.usable and not (root / 'node').exists()
    assert (root / 'cgroup.subtree_control').read_text() == '-memory -pids -cpu'
    assert (root / 'cgroup.procs').read_text() == str(os.getpid())


# ---------------------------------------------------------------- a process's cgroup goes with it


class FakeNode:
    def __init__(self):
        import io
        from rich.console import Console
        from fannode.node.output import Printer
        self.out = io.StringIO()
        self.printer = Printer(console=Console(file=self.out, width=300))
        self.stopping = False

    def forget(self, pid):
        pass


def kernel_rmdir(path):
    """As the kernel: a cgroup with a process in it stays (EBUSY); else it goes with its files."""
    import shutil
    procs = os.path.join(path, 'cgroup.procs')
    if os.path.exists(procs) and cgroups._read(procs).strip():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


@pytest.mark.parametrize('how', ['deliberate', 'node stopping', 'crash'])
def test_a_reaped_process_cgroup_is_removed_however_it_stopped(tmp_path, monkeypatch, how):
    from fannode.node import limitwatch
    from fannode.node.block import Block
    from fannode.node.spec import InstanceSpec
    root = fake_cgroup(tmp_path)
    monkeypatch.setattr(cgroups, 'ours', lambda: [os.getpid()])
    monkeypatch.setattr(cgroups, 'remove', kernel_rmdir)
    monkeypatch.setattr(limitwatch, '_cgroups', cgroups.Cgroups(str(root)))
    monkeypatch.setattr(limitwatch, '_paths', {})
    block = Block(FakeNode(), InstanceSpec('web', 'x', ('x',), limits=Limits(memory=64 << 20), restart='never'))
    block.index[4242] = 1
    limitwatch.placed(block, 4242)
    assert (root / 'web.4242').is_dir() and limitwatch._paths == {4242: str(root / 'web.4242')}
    (root / 'web.4242' / 'cgroup.procs').write_text('')  # the process is gone
    block.notes[4242] = 'killed: memory limit 64 MiB (rss 80 MiB)'
    if how == 'deliberate':  # a rollout, a liveness kill, scale-down, `fannode restart`
        block.deliberate.add(4242)
    elif how == 'node stopping':  # Ctrl-C
        block.node.stopping = True
    block.reaped(4242, -9)
    assert not (root / 'web.4242').exists() and limitwatch._paths == {} and block.notes == {}
    assert block.last_exit == ('killed: memory limit 64 MiB (rss 80 MiB)' if how == 'crash' else '')
