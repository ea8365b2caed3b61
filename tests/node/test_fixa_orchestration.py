"""How the node's changes meet: a rollout asked for while one waits, the refusal while one
runs (exit 3), completed_successfully, `restart: true` counting only whole restarts,
the stop order of a rolling block, Procfile blocks never rolled side by side."""
import asyncio
import dataclasses
import io
import textwrap
from types import SimpleNamespace

import pytest
from rich.console import Console

from fannode.cli import exitcodes
from fannode.node import conditions
from fannode.node.client import Busy
from fannode.node.output import Printer
from fannode.node.reloadkey import listed
from fannode.node.rollout import Rollouts
from fannode.node.topology import loads

NODE = '''\
instances:
  db:
    command: python db.py
    ready: {log: up}
  web:
    command: python web.py
    numprocesses: 2
    ready: {log: up}
    version: 1.0.0
    depends_on: [db]
'''


def parse(text=NODE):
    return loads(textwrap.dedent(text), 'node.yml', '.', env={})


class Block:
    def __init__(self, spec):
        self.name, self.spec, self.desired = spec.name, spec, spec.numprocesses
        self.watcher, self.failed = object(), None

    def status(self):
        return {'name': self.name}


class FakeNode:
    def __init__(self, topology):
        self.topology = topology
        self.printer = Printer(console=Console(file=io.StringIO(), width=300))
        self.blocks = {name: Block(spec) for name, spec in topology.instances.items()}
        self.changing = asyncio.Lock()
        self.stop_requested = asyncio.Event()
        self.stopping = False
        self.rollouts = Rollouts(self)


def test_a_rollout_asked_for_while_one_waits_joins_it_and_takes_the_newest_spec():
    async def scenario():
        node = FakeNode(parse())
        web = node.blocks['web']
        async with node.changing:  # an edit being applied: the rollouts wait for it
            first = node.rollouts.begin('web', web.spec, 'rollout')  # autoreload
            again = node.rollouts.begin('web', web.spec, 'rollout')
            assert again is first and first.state == 'waiting'
            v2 = dataclasses.replace(web.spec, version='2.0.0')
            edited = node.rollouts.begin('web', v2, 'node.yml')  # node.yml saved meanwhile
            assert edited is first and (first.kind, first.spec) == ('node.yml', v2)
            assert node.rollouts.statuses()[1]['rollout']['state'] == 'waiting'
            with pytest.raises(Busy, match='web is rolling out'):
                node.rollouts.refuse_busy('node.restart_process')
        await node.rollouts.stop()
        return first

    assert asyncio.run(scenario()).state == 'stopped'


def test_a_rollout_asked_for_while_one_runs_waits_behind_it_and_ps_keeps_showing_the_running_one():
    async def scenario():
        node = FakeNode(parse())
        web = node.blocks['web']
        async with node.changing:
            running = node.rollouts.begin('web', web.spec, 'rollout')
            running.state = 'running'  # as run() has it once it holds the lock
            node.rollouts.queued.clear()
            queued = node.rollouts.begin('web', web.spec, 'rollout')
            assert queued is not running and node.rollouts.last['web'] is running
            assert node.rollouts.begin('web', web.spec, 'rollout') is queued
        await node.rollouts.stop()
    asyncio.run(scenario())


def test_the_rollout_spec_of_fannode_rollout_is_read_when_it_runs_not_when_asked():
    node = FakeNode(parse())
    web = node.blocks['web']
    rollout = SimpleNamespace(kind='rollout', spec=None, name='web')
    web.spec = dataclasses.replace(web.spec, version='2.0.0')  # a node.yml rollout ended meanwhile
    web.desired = 3
    spec = node.rollouts.spec_of(rollout, web)
    assert (spec.version, spec.numprocesses) == ('2.0.0', 3)
    rollout.kind = 'rollback'
    assert node.rollouts.spec_of(rollout, web) is None  # nothing to go back to


def test_a_refusal_during_a_rollout_exits_3_as_unavailable():
    assert exitcodes.for_error(Busy('web is rolling out (1/3 replaced); try again when it is done')) == 3


def dep(exits=(), desired=1, live=(), watcher=True, failed=None):
    return SimpleNamespace(name='migrate', exits=list(exits), desired=desired, live=set(live), failed=failed,
                           watcher=object() if watcher else None, gone=len(exits), last_exit='exited')


@pytest.mark.parametrize('block, met', [
    (dep(exits=[0]), True),
    (dep(exits=[0, 0], desired=2), True),
    (dep(exits=[0], desired=2), False),          # one still to finish
    (dep(exits=[], desired=0), False),           # scaled to 0 before it ran
    (dep(exits=[], desired=1, watcher=True), False),  # stopped on purpose (a liveness kill): no outcome
    (dep(exits=[0], watcher=False), False),
])
def test_completed_successfully_needs_an_exit_0_of_every_process(block, met):
    assert conditions.met(block, 'completed_successfully') is met


def test_completed_successfully_never_comes_after_a_failed_exit():
    assert conditions.met(dep(exits=[3]), 'completed_successfully') == 'migrate exited'


def test_restart_true_counts_a_new_block_not_a_replaced_process():
    node = FakeNode(parse())
    seen = {}
    assert conditions.restarted(node, seen) == []
    node.blocks['db'].index = {1: 1}
    node.blocks['db'].index = {2: 1}  # a crash and its replacement, within the block
    assert conditions.restarted(node, seen) == []
    node.blocks['db'] = Block(node.topology.instances['db'])  # fannode restart, an edit, a rollout's end
    assert conditions.restarted(node, seen) == ['db']
    assert conditions.restarted(node, seen) == []
    node.blocks['web@next'] = Block(node.topology.instances['web'])  # a rollout's new processes
    assert conditions.restarted(node, seen) == []


def test_a_rolling_blocks_new_processes_stop_in_its_wave():
    node = FakeNode(parse())
    node.blocks['web@next'] = node.blocks['web']
    assert conditions.stop_waves(node) == [['web', 'web@next'], ['db']]
    del node.blocks['web']  # the old watcher removed, the new one not renamed yet
    assert conditions.stop_waves(node) == [['web@next'], ['db']]


def test_a_procfile_block_is_never_rolled_side_by_side():
    spec = parse().instances['web']
    assert spec.rolls
    assert not dataclasses.replace(spec, port=5000).rolls  # its PORT comes from the worker index


def test_a_few_names_and_how_many_more():
    assert listed(['a', 'b']) == 'a, b'
    assert listed(['a', 'b', 'c', 'd', 'e']) == 'a, b, c and 2 more'


class TurnBlock:
    """A block whose processes are replaced in turn: its reap (simulated) starts the replacement."""

    def __init__(self, port):
        self.name, self.failed = 'web', None
        self.spec = SimpleNamespace(port=port, ready=SimpleNamespace(timeout=30.0), stop_timeout=5.0)
        self.index = {11: 1, 12: 2}
        self.ready_pids, self.stopping = {11, 12}, set()
        self.synced, self.stopped, self.next_pid = 0, [], 100

    @property
    def live(self):
        return set(self.index) - self.stopping

    def stop_process(self, pid):
        self.stopping.add(pid)
        self.stopped.append(pid)

    def sync(self):
        self.synced += 1

    def reap_and_replace(self):
        """What circus and the block do once the process stopping has exited."""
        for pid in list(self.stopping):
            index = self.index.pop(pid)
            self.stopping.discard(pid)
            self.next_pid += 1
            self.index[self.next_pid] = index
            self.ready_pids.add(self.next_pid)


@pytest.mark.parametrize('port, synced', [(5000, 0), (None, 2)])
def test_in_turn_a_procfile_blocks_replacement_waits_for_the_old_process_to_exit(port, synced):
    from fannode.node import inturn

    async def scenario():
        block = TurnBlock(port)
        node = SimpleNamespace(blocks={'web': block}, stop_requested=asyncio.Event(),
                               printer=Printer(console=Console(file=io.StringIO(), width=300)))
        progress = SimpleNamespace(done=0, total=0)
        task = asyncio.ensure_future(inturn.replace(node, progress, block))
        for _ in range(2):
            while not block.stopping:
                await asyncio.sleep(0.01)
            assert len(block.index) == 2  # no replacement beside the one stopping from the node here
            block.reap_and_replace()
        assert await task == ''
        return block, progress

    block, progress = asyncio.run(scenario())
    assert block.stopped == [11, 12] and (progress.done, progress.total) == (2, 2)
    assert block.synced == synced  # a Procfile block: the reap's sync starts it, never the node beside


def test_a_shutdown_stops_a_block_removed_meanwhile_without_an_error():
    from fannode.node.supervisor import Node
    node = Node(parse(), Printer(console=Console(file=io.StringIO(), width=300)))
    asyncio.run(node.stop_block('web@next'))  # a rollout's new set, gone already
