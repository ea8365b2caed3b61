"""cgroup v2 for `limits:`, on a directory laid out as the kernel lays one out (the files
are plain files here: what the node writes into them is what is checked)."""
import os

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


def test_the_node_moves_into_a_leaf_and_enables_the_controllers(tmp_path):
    root = fake_cgroup(tmp_path)
    found = cgroups.Cgroups(str(root))
    assert found.usable
    assert (root / 'node' / 'cgroup.procs').read_text() == str(os.getpid())
    assert (root / 'cgroup.subtree_control').read_text() == '+memory +pids +cpu'


def test_controllers_already_enabled_leave_the_node_where_it_is(tmp_path):
    root = fake_cgroup(tmp_path, enabled='memory pids')
    assert cgroups.Cgroups(str(root)).usable and not (root / 'node').exists()


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
