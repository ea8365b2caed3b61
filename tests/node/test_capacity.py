"""How many processes a node may run: refused at load with the file, line and limit."""
import textwrap

import pytest

from fannode.exceptions import ConfigError, UsageError
from fannode.node import capacity
from fannode.node.topology import loads


@pytest.fixture
def limit(monkeypatch):
    """A limit of 10, as if set by $FANNODE_MAX_PROCESSES."""
    monkeypatch.setattr(capacity, 'MAX_PROCESSES', 10)
    capacity.limit.cache_clear()
    yield 10
    capacity.limit.cache_clear()


def load(text):
    return loads(textwrap.dedent(text), 'node.yml', '.', env={})


def test_one_block_over_the_limit(limit):
    with pytest.raises(ConfigError) as info:
        load('''\
        instances:
          many:
            command: sleep 1
            numprocesses: 11
        ''')
    assert str(info.value) == ('node.yml:4: instances.many.numprocesses: asks for 11 processes, more than this '
                               'node may run: 10 (set by $FANNODE_MAX_PROCESSES); set $FANNODE_MAX_PROCESSES '
                               'to allow more')


def test_all_blocks_together_over_the_limit(limit):
    with pytest.raises(ConfigError, match=r'^node\.yml:5: instances\.b\.numprocesses: the blocks up to this one '
                                          r'ask for 12 processes, more than this node may run: 10'):
        load('''\
        instances:
          a: {command: sleep 1, numprocesses: 6}
          c: sleep 1
          b:
            numprocesses: 5
            command: sleep 1
        ''')
    assert len(load('instances:\n  a: {command: sleep 1, numprocesses: 10}\n').instances) == 1


def test_scale_counts_the_other_blocks(limit):
    capacity.check_scale({'a': 4, 'b': 3}, 'a', 7)
    with pytest.raises(UsageError, match=r'^a: the node would run 11 processes, more than this node may run: 10'):
        capacity.check_scale({'a': 4, 'b': 3}, 'a', 8)


def test_the_limit_worked_out_from_the_machine(monkeypatch):
    import resource

    import psutil
    monkeypatch.setattr(capacity, 'MAX_PROCESSES', 0)
    capacity.limit.cache_clear()
    capacity._worked_out.cache_clear()
    monkeypatch.setattr(resource, 'getrlimit', lambda which: (200, 400))
    monkeypatch.setattr(psutil, 'virtual_memory', lambda: type('M', (), {'total': 64 * capacity.MIB * 1000})())
    try:
        assert (capacity.limit(), capacity.why()) == (100, 'half of RLIMIT_NPROC 200')
        capacity._worked_out.cache_clear()
        monkeypatch.setattr(psutil, 'virtual_memory', lambda: type('M', (), {'total': 2048 * capacity.MIB})())
        capacity.limit.cache_clear()
        assert (capacity.limit(), capacity.why()) == (64, '2048 MiB of memory at 32 MiB a process')
        capacity._worked_out.cache_clear()
        capacity.limit.cache_clear()
        monkeypatch.setattr(resource, 'getrlimit', lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        monkeypatch.setattr(psutil, 'virtual_memory', lambda: type('M', (), {'total': 1 << 50})())
        assert (capacity.limit(), capacity.why()) == (capacity.MAX_AUTO, "fannode's default cap")
    finally:
        capacity._worked_out.cache_clear()
        capacity.limit.cache_clear()
