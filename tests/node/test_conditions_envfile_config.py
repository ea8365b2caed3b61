"""Reading depends_on conditions, env files and Procfiles into the topology (issue 20,
items 1, 3, 4): what each key becomes, and every bad value as one line naming file:line."""
from __future__ import annotations

import pytest

from fannode.exceptions import ConfigError
from fannode.node.changes import diff
from fannode.node.topology import load


def write(tmp_path, text: str, name: str = 'node.yml'):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path, env=None) -> str:
    with pytest.raises(ConfigError) as e:
        load(path, env or {})
    return str(e.value).replace('%s/' % path.parent, '')  # as in the file's directory


NODE = '''instances:
  migrate:
    command: sh -c true
    restart: never
  db: sleep 1
  web:
    command: sleep 1
    depends_on:
      migrate: {condition: completed_successfully}
      db: {condition: healthy, restart: true}
  old:
    command: sleep 1
    depends_on: [db]
'''


def test_conditions_are_read_and_a_plain_list_means_ready(tmp_path):
    t = load(write(tmp_path, NODE), {})
    assert t.instances['web'].conditions == (('migrate', 'completed_successfully', False), ('db', 'healthy', True))
    assert t.instances['web'].depends_on == ('migrate', 'db')
    assert t.instances['old'].conditions == (('db', 'ready', False),)
    assert t.start_waves() == [['migrate', 'db'], ['web', 'old']]


def test_a_changed_condition_applies_in_place(tmp_path):
    old = load(write(tmp_path, NODE), {})
    new = load(write(tmp_path, NODE.replace('healthy', 'started')), {})
    changes = diff(old, new)
    assert (changes.updated, changes.restarted) == (['web'], [])


@pytest.mark.parametrize('block, error', [
    ('    depends_on: {db: {condition: done}}',
     "node.yml:4: instances.web.depends_on.db.condition: expected one of: started, ready, healthy, "
     "completed_successfully, got 'done'"),
    ('    depends_on: {nope: {condition: started}}',
     "node.yml:4: instances.web.depends_on.nope: unknown instance 'nope' (instances: db, web)"),
    ('    depends_on: {db: {condition: started, restart: yes please}}',
     "node.yml:4: instances.web.depends_on.db.restart: expected bool, got str 'yes please'"),
    ('    depends_on: {db: {when: started}}',
     "node.yml:4: instances.web.depends_on.db: unknown key 'when' (expected one of: condition, restart)"),
    ('    depends_on: {db: {condition: completed_successfully}}',
     'node.yml:4: instances.web.depends_on.db.condition: db has restart: always, so it never completes; '
     'give it restart: never (or on-failure) to wait for it with completed_successfully'),
    ('    depends_on: {web: {condition: started}}',
     'node.yml:4: instances.web.depends_on.web: an instance cannot depend on itself'),
])
def test_bad_conditions_are_one_line_errors(tmp_path, block, error):
    text = 'instances:\n  db: sleep 1\n  web:\n%s\n    command: sleep 1\n' % block
    assert error_of(write(tmp_path, text)) == error


def test_env_layers_and_where_each_variable_is_from(tmp_path):
    write(tmp_path, 'A=dotenv\nB=dotenv\nC=dotenv\nD=dotenv\nE=dotenv\nREF=${A}-${MISSING:-dflt}\n', '.env')
    write(tmp_path, 'B=top-file\nC=top-file\nD=top-file\n', 'top.env')
    write(tmp_path, 'D=block-file\nE=block-file\n', 'block.env')
    path = write(tmp_path, 'env_file: top.env\nenv: {C: top-env}\ninstances:\n'
                           '  a:\n    command: sleep 1\n    env_file: block.env\n    env: {E: block-env, F: x}\n'
                           '  b: sleep ${A}\n')
    t = load(path, {'A': 'shell'})
    a = t.instances['a']
    assert {k: v for k, v in a.env if k in 'ABCDEF' or k == 'REF'} == {
        'A': 'dotenv', 'B': 'top-file', 'C': 'top-env', 'D': 'block-file', 'E': 'block-env', 'F': 'x',
        'REF': 'dotenv-dflt'}
    assert dict(a.env_from) == {'A': '.env', 'B': 'top.env', 'C': 'env', 'D': 'block.env',
                                'E': 'instances.a.env', 'F': 'instances.a.env', 'REF': '.env'}
    assert t.instances['b'].argv == ('sleep', 'shell')  # ${VAR} in node.yml: the shell wins over .env


def test_an_env_file_edit_restarts_the_blocks_it_changes(tmp_path):
    write(tmp_path, 'A=1\n', '.env')
    path = write(tmp_path, 'instances:\n  a: sleep 1\n  b:\n    command: sleep 1\n    env: {A: mine}\n')
    old = load(path, {})
    write(tmp_path, 'A=2\n', '.env')
    assert diff(old, load(path, {})).restarted == ['a']


def test_env_file_syntax(tmp_path):
    from fannode.node.envfiles import read
    path = write(tmp_path, '# c\n\nexport A=1\nB="two\\nlines" # note\nC=\'${A} stays\'\nD=${A}${E:-e}\n'
                           'F = spaced \nG\nH=\n', 'x.env')
    assert read(str(path), {'G': 'from-env'}) == {
        'A': '1', 'B': 'two\nlines', 'C': '${A} stays', 'D': '1e', 'F': 'spaced', 'G': 'from-env', 'H': ''}


def test_a_procfile_is_a_topology_with_ports(tmp_path):
    write(tmp_path, 'WHO=x\n', '.env')
    path = write(tmp_path, '# c\nweb: python3 -m http.server $PORT\n\nworker: fannode instance --config w.yml\n',
                 'Procfile')
    t = load(path, {})
    assert list(t.instances) == ['web', 'worker'] and t.registry.startswith('hub://')
    web, worker = t.instances['web'], t.instances['worker']
    assert (web.port, worker.port) == (5000, 5100)
    assert web.argv == ('sh', '-c', 'python3 -m http.server $PORT')
    assert worker.is_service and worker.argv[0] == 'fannode'  # no shell syntax: run directly
    assert dict(web.env)['WHO'] == 'x'
    assert load(path, {'PORT': '7000'}).instances['worker'].port == 7100


@pytest.mark.parametrize('text, env, error', [
    ('web: x\n\n: y\n', {}, "Procfile:3: expected `name: command`, got ': y'"),
    ('web:\n', {}, 'Procfile:1: web: the command is empty'),
    ('# nothing\n', {}, 'Procfile: no processes (expected lines `name: command`)'),
    ('web: x\n', {'PORT': 'high'}, "Procfile: $PORT is 'high': expected a port number, the first of the ports "
                                   "the processes get"),
    ('hub: x\n', {}, "Procfile:1: instances.hub: 'hub' is reserved for the hub the node runs"),
])
def test_bad_procfiles_are_one_line_errors(tmp_path, text, env, error):
    path = write(tmp_path, text, 'Procfile')
    assert error_of(path, env) == error
