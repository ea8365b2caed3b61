"""node.yml's `preload:`: which blocks are forked from a template, bad values, and what
changing it does."""
import textwrap

import pytest

from fannode.exceptions import ConfigError
from fannode.node.changes import diff
from fannode.node.topology import loads


def load(blocks: str):
    return loads('registry: hub://127.0.0.1:4999\ninstances:\n' + textwrap.indent(textwrap.dedent(blocks), '  '),
                 'node.yml', '.', env={})


def test_service_instances_are_preloaded_by_default_and_other_commands_are_not():
    top = load('''\
    greeting: fannode instance --config greeting.yml
    module: {command: python -m fannode instance --config greeting.yml}
    plain: {command: fannode instance --config greeting.yml, preload: false}
    reloads: fannode instance --config greeting.yml --reload
    gateway: fannode gateway
    redis: redis-server --port 6390
    ''')
    preloads = {name: spec.preloads for name, spec in top.instances.items()}
    assert preloads == {'greeting': True, 'module': True, 'plain': False, 'reloads': False,
                        'gateway': False, 'redis': False}


def test_a_bad_preload_value_names_the_file_line_and_key():
    with pytest.raises(ConfigError) as info:
        load('''\
        greeting:
          command: fannode instance --config greeting.yml
          preload: sometimes
        ''')
    assert str(info.value).startswith('node.yml:5: instances.greeting.preload: ')
    assert 'sometimes' in str(info.value)


def test_changing_preload_restarts_the_block():
    old = load('greeting: {command: fannode instance --config greeting.yml, numprocesses: 2}\n')
    new = load('greeting: {command: fannode instance --config greeting.yml, numprocesses: 2, preload: false}\n')
    changes = diff(old, new)
    assert changes.restarted == ['greeting'] or changes.rolling == ['greeting']
    assert 'preload' in changes.describe()[0]
