"""node.yml's `version:` and `rollout:` keys, and which edits roll instead of restarting."""
import textwrap

import pytest

from fannode.exceptions import ConfigError
from fannode.node.changes import diff
from fannode.node.rolloutspec import RolloutSpec
from fannode.node.topology import loads

NODE = '''\
instances:
  greeting:
    command: fannode instance --config conf/greeting.yml
    numprocesses: 3
    version: 1.0.0
  redis:
    command: redis-server --port 6390
    ready: {tcp: 6390}
  worker:
    command: python worker.py
    ready: {log: 'waiting for jobs'}
'''


def parse(text):
    return loads(textwrap.dedent(text), 'node.yml', '.', env={})


def edited(old, new, text=NODE):
    assert old in text
    return diff(parse(text), parse(text.replace(old, new)))


def test_version_and_rollout_are_read():
    t = parse(NODE.replace('    version: 1.0.0\n', "    version: '2.0'\n    rollout: {surge: 2, timeout: 30}\n"))
    spec = t.instances['greeting']
    assert spec.version == '2.0' and spec.rollout == RolloutSpec('rolling', 2, 30.0)
    assert parse(NODE).instances['greeting'].rollout is None
    assert parse(NODE).instances['redis'].version == ''
    off = parse(NODE.replace('    version: 1.0.0\n', '    rollout: false\n')).instances['greeting']
    assert off.rollout == RolloutSpec('restart') and not off.rolls


def test_which_blocks_roll_by_default():
    t = parse(NODE)
    # readiness seen per process (a registered instance, a log line): rolls
    assert t.instances['greeting'].rolls and t.instances['worker'].rolls
    # a tcp check answers for the port the old process holds too: restarts unless asked
    assert not t.instances['redis'].rolls
    asked = parse(NODE.replace('    ready: {tcp: 6390}\n', '    ready: {tcp: 6390}\n    rollout: true\n'))
    assert asked.instances['redis'].rolls


def test_a_version_edit_of_a_service_is_a_rolling_replace():
    changes = edited('version: 1.0.0', 'version: 2.0.0')
    assert changes.rolling == ['greeting'] and changes.restarted == [] and not changes.empty
    assert changes.describe() == ['greeting: rolling replace (version changed)']


def test_command_and_env_edits_roll_too_and_restart_where_they_cannot():
    changes = edited('conf/greeting.yml', 'conf/greeting2.yml')
    assert changes.rolling == ['greeting']
    changes = edited('--port 6390', '--port 6391')
    assert changes.restarted == ['redis'] and changes.rolling == []
    changes = edited('    version: 1.0.0\n', '    version: 1.0.0\n    rollout: {strategy: restart}\n    env: {A: 1}\n')
    assert changes.restarted == ['greeting'] and changes.rolling == []


def test_changing_only_rollout_applies_in_place():
    changes = edited('    version: 1.0.0\n', '    version: 1.0.0\n    rollout: {surge: 2}\n')
    assert changes.updated == ['greeting'] and changes.describe() == ['greeting: updated (rollout changed)']


def test_a_block_scaled_from_zero_restarts():
    text = NODE.replace('numprocesses: 3', 'numprocesses: 0')
    changes = edited('version: 1.0.0', 'version: 2.0.0', text)
    assert changes.restarted == ['greeting']


@pytest.mark.parametrize('block, message', [
    ('version: 2.0', "node.yml:5: instances.greeting.version: write the version as text: version: '2.0' "
                     '(YAML reads it as a number)'),
    ("version: ''", "node.yml:5: instances.greeting.version: expected a version such as 2.0.0, got ''"),
    ('version: [1]', 'node.yml:5: instances.greeting.version: expected'),
    ('rollout: 3', 'node.yml:5: instances.greeting.rollout: expected true, false or a mapping'),
    ('rollout: {surge: 0}', 'node.yml:5: instances.greeting.rollout.surge: expected a whole number >= 1, got 0'),
    ('rollout: {surge: x}', 'node.yml:5: instances.greeting.rollout.surge: expected'),
    ('rollout: {timeout: -1}', 'node.yml:5: instances.greeting.rollout.timeout: expected a number of seconds > 0'),
    ('rollout: {strategy: blue-green}', "node.yml:5: instances.greeting.rollout.strategy: expected one of: "
                                        "rolling, restart, got 'blue-green'"),
    ('rollout: {surg: 2}', "instances.greeting.rollout: unknown key 'surg'"),
])
def test_bad_values_are_one_line_errors(block, message):
    with pytest.raises(ConfigError) as e:
        parse(NODE.replace('version: 1.0.0', block))
    assert message in str(e.value) and '\n' not in str(e.value)
