"""`fannode up --check --show-env` shows what fannode.node.launch gives a process."""
from fannode.cli.showenv import resolved
from fannode.node.topology import loads


def env_of(text):
    topology = loads(text, 'node.yml', '.', env={})
    return resolved(topology, topology.instances['app'])


def test_version_and_leave_grace_are_shown_as_processes_get_them():
    env, origin = env_of('instances:\n  app: {command: sleep 1, version: 2.1.0, env: {FANNODE_VERSION: mine}}\n')
    assert env['FANNODE_VERSION'] == '2.1.0' and origin['FANNODE_VERSION'] == 'node: version'  # over the env
    assert env['FANNODE_LEAVE_GRACE'] == '0.5' and origin['FANNODE_LEAVE_GRACE'] == 'node'


def test_a_block_may_set_its_own_leave_grace_and_without_version_there_is_none():
    env, origin = env_of('instances:\n  app: {command: sleep 1, env: {FANNODE_LEAVE_GRACE: "2"}}\n')
    assert env['FANNODE_LEAVE_GRACE'] == '2' and origin['FANNODE_LEAVE_GRACE'] == 'instances.app.env'
    assert 'FANNODE_VERSION' not in env
