import textwrap

import pytest

from fannode.exceptions import ConfigError
from fannode.node.blockread import BLOCK_KEYS
from fannode.node.changes import Changes, diff
from fannode.node.topology import HUB_BLOCK, InstanceSpec, ReadyCheck, SocketSpec, Topology, load, loads
from fannode.node.topology import _TOP_KEYS  # what node.yml allows at the top, as errors list it
from fannode.settings import DEFAULT_HUB

EXAMPLE = '''\
registry: hub            # or zookeeper://zk1:2181/fannode
events: hub
env: {PYTHONPATH: services}
sockets:
  web: {host: 0.0.0.0, port: 4080}
instances:
  web:      {command: fannode instance --config conf/web.yml, numprocesses: 2, sockets: [web], depends_on: [greeting]}
  greeting: {command: fannode instance --config conf/greeting.yml, numprocesses: 3}
  listen:   {command: fannode instance --config conf/listen.yml, numprocesses: 4}
  redis:
    command: redis-server --port 6390
    ready: {tcp: 6390}
    restart: on-failure
'''


def parse(text, env=None, base_dir='.'):
    return loads(textwrap.dedent(text), 'node.yml', base_dir, env={} if env is None else env)


def error_of(text, **kwargs):
    with pytest.raises(ConfigError) as info:
        parse(text, **kwargs)
    message = str(info.value)
    assert '\n' not in message
    return message


# ---------------------------------------------------------------- loading


def test_example_loads(tmp_path):
    path = tmp_path / 'node.yml'
    path.write_text(EXAMPLE)
    topo = load(path, env={})
    assert topo.path == str(path)
    assert topo.registry == topo.events == DEFAULT_HUB
    assert topo.hosts_hub
    assert topo.env == (('PYTHONPATH', 'services'),)
    assert topo.sockets == {'web': SocketSpec('web', '0.0.0.0', 4080)}
    assert list(topo.instances) == ['web', 'greeting', 'listen', 'redis']

    web = topo.instances['web']
    assert web.argv == ('fannode', 'instance', '--config', 'conf/web.yml')
    assert web.command == 'fannode instance --config conf/web.yml'
    assert (web.numprocesses, web.sockets, web.depends_on) == (2, ('web',), ('greeting',))
    assert web.is_service and web.ready == ReadyCheck('registered')
    assert web.env_dict() == {'PYTHONPATH': str(tmp_path / 'services')}  # relative to node.yml
    assert (web.restart, web.max_restarts, web.stop_timeout, web.cwd) == ('always', 10, 10.0, None)
    assert web.line == 7

    redis = topo.instances['redis']
    assert redis.argv == ('redis-server', '--port', '6390')
    assert not redis.is_service
    assert redis.ready == ReadyCheck('tcp', 6390, 60.0)
    assert redis.restart == 'on-failure'
    assert redis.line == 10

    # a block waits for its latest dependency; file order inside a wave
    assert topo.start_waves() == [['greeting', 'listen', 'redis'], ['web']]


def test_load_names_the_path_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'node.yml').write_text('instances:\n  a: {command: x, numprocess: 2}\n')
    with pytest.raises(ConfigError, match=r"^node\.yml:2: instances\.a: unknown key 'numprocess'"):
        load('node.yml', env={})


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError, match='no such file'):
        load(tmp_path / 'node.yml')


def test_string_block_and_list_command():
    topo = parse('''\
        instances:
          greeting: fannode instance --config conf/greeting.yml
          tool: [python, -c, "print('hi there')", 3]
          py: python3 -m fannode instance --config x.yml
    ''')
    greeting = topo.instances['greeting']
    assert greeting.command == 'fannode instance --config conf/greeting.yml'
    assert greeting.numprocesses == 1 and greeting.is_service
    assert greeting.ready.kind == 'registered'
    assert greeting.line == 2
    tool = topo.instances['tool']
    assert tool.argv == ('python', '-c', "print('hi there')", '3')
    assert tool.command == '''python -c 'print('"'"'hi there'"'"')' 3'''
    assert not tool.is_service and tool.ready == ReadyCheck('started')
    assert topo.instances['py'].is_service


def test_empty_instances_is_an_empty_cluster():
    assert parse('instances: {}').instances == {}
    assert parse('instances:').instances == {}
    assert parse('instances: {}').start_waves() == []


def test_env_substitution():
    text = '''\
        sockets:
          web:
            port: "${PORT:-4080}"
          api:
            port: ${API_PORT:-4081}
        instances:
          web: {command: "fannode instance --port ${PORT:-4080}", sockets: [web, api]}
    '''
    with pytest.raises(ConfigError, match=r'^node\.yml:3: sockets\.web\.port: expected int, got str '):
        parse(text)  # a quoted reference stays a string
    topo = parse(text.replace('"${PORT:-4080}"', '${PORT:-4080}'), env={'PORT': '5000'})
    assert topo.sockets['web'].port == 5000
    assert topo.sockets['api'].port == 4081
    assert topo.instances['web'].argv[-1] == '5000'


def test_env_merge_block_wins_and_values_are_strings():
    topo = parse('''\
        env: {A: node, B: 1, DEBUG: true}
        instances:
          x: {command: run, env: {A: block, C: 2.5}}
          y: {command: run}
    ''')
    assert topo.instances['x'].env == (('A', 'block'), ('B', '1'), ('C', '2.5'), ('DEBUG', 'true'))
    assert topo.instances['y'].env_dict() == {'A': 'node', 'B': '1', 'DEBUG': 'true'}


def test_block_options(tmp_path):
    (tmp_path / 'work').mkdir()
    topo = parse('''\
        sockets:
          web: {port: 4080}
        instances:
          a:
            command: run a
            numprocesses: 0
            cwd: work
            stop_timeout: 2
            restart: never
            max_restarts: 0
            depends_on: b
            ready: {http: /health, timeout: 5}
            sockets: [web]
          b:
            command: run b
            ready: {log: listening on}
          c:
            command: run c
            ready: {tcp: "db:5432"}
          d:
            command: run d
            ready: {http: "http://example.com/x"}
          e:
            command: fannode instance -c e.yml
            ready: {registered: true, timeout: 1.5}
    ''', base_dir=str(tmp_path))
    a = topo.instances['a']
    assert (a.numprocesses, a.cwd, a.stop_timeout) == (0, str(tmp_path / 'work'), 2.0)
    assert (a.restart, a.max_restarts, a.depends_on) == ('never', 0, ('b',))
    assert a.ready == ReadyCheck('http', '/health', 5.0)
    assert topo.instances['b'].ready == ReadyCheck('log', 'listening on')
    assert topo.instances['c'].ready == ReadyCheck('tcp', 'db:5432')
    assert topo.instances['d'].ready == ReadyCheck('http', 'http://example.com/x')
    assert topo.instances['e'].ready == ReadyCheck('registered', None, 1.5)
    assert topo.start_waves() == [['b', 'c', 'd', 'e'], ['a']]


def test_urls():
    topo = parse('registry: zookeeper://zk1:2181/fannode\ninstances: {}')
    assert topo.registry == 'zookeeper://zk1:2181/fannode'
    assert topo.events == DEFAULT_HUB  # as resolve_events_url: not a hub registry → the local hub
    assert topo.hosts_hub
    topo = parse('registry: zookeeper://zk1:2181/f\nevents: amqp://g:g@rabbit:5672/%2F\ninstances: {}')
    assert topo.events == 'amqp://g:g@rabbit:5672/%2F' and not topo.hosts_hub
    topo = parse('registry: hub://10.0.0.5:5000\ninstances: {}')
    assert topo.events == 'hub://10.0.0.5:5000' and not topo.hosts_hub
    topo = parse('registry: hub://10.0.0.5:5000\ninstances: {hub: {command: x}}')
    assert list(topo.instances) == [HUB_BLOCK]  # not reserved: the hub runs elsewhere
    topo = parse('instances: {}')
    assert topo.registry == topo.events == DEFAULT_HUB
    assert parse('events: local://t\ninstances: {}').events == 'local://t'
    # Every scheme an installed registry backend serves; the toolkit's local:// among them.
    assert parse('registry: local://x\ninstances: {}').registry == 'local://x'


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize('text, expected', [
    ('', "node.yml: empty file; expected registry/events/env/sockets/instances"),
    ('# nothing\n', "node.yml: empty file;"),
    ('registry: hub\n', "node.yml: instances: missing"),
    ('registry: hub\ninstance: {}\n',
     # the keys as the node lists them: each feature adds its own
     "node.yml:2: unknown key 'instance' (expected one of: %s); did you mean 'instances'?"
     % ', '.join(sorted(_TOP_KEYS))),
    ('instances: [a, b]\n', "node.yml:1: instances: expected a mapping, got list"),
    ('registry: etcd://x\ninstances: {}\n',
     "node.yml:1: registry: expected 'hub' or a URL with scheme hub://, local://, zookeeper://, got 'etcd://x'"),
    ('registry: amqp://g:g@rabbit/\ninstances: {}\n',
     "node.yml:1: registry: expected 'hub' or a URL with scheme hub://, local://, zookeeper://, got 'amqp://"),
    ('registry: 4010\ninstances: {}\n', "node.yml:1: registry: expected str or null, got int 4010"),
    ('events: hubb\ninstances: {}\n', "node.yml:1: events: expected 'hub' or a URL with scheme amqp://, hub://, local://"),
    ('registry: hub://h:99999\ninstances: {}\n', "node.yml:1: registry: bad URL 'hub://h:99999'"),
    ('instances:\n  -bad: x\n', "node.yml:2: instances.-bad: bad instance name '-bad'"),
    ('instances:\n  hub: x\n', "node.yml:2: instances.hub: 'hub' is reserved for the hub the node runs"),
    ('instances:\n  a: x\n  greeting: {command: x, numprocess: 2}\n',
     "node.yml:3: instances.greeting: unknown key 'numprocess' (expected one of: %s); "
     "did you mean 'numprocesses'?" % ', '.join(sorted(BLOCK_KEYS))),
    ('instances:\n  greeting:\n    numprocesses: 2\n', "node.yml:2: instances.greeting.command: missing"),
    ('instances:\n  greeting:\n', "node.yml:2: instances.greeting.command: missing"),
    ('instances:\n  greeting: {command: "  "}\n', "node.yml:2: instances.greeting.command: must not be empty"),
    ('instances:\n  greeting: ""\n', "node.yml:2: instances.greeting: must not be empty"),
    ('instances:\n  greeting: 42\n', "node.yml:2: instances.greeting: expected a mapping, got int 42"),
    ('instances:\n  greeting: []\n', "node.yml:2: instances.greeting: must not be empty"),
    ('instances:\n  greeting:\n    command: echo "hi\n',
     "node.yml:3: instances.greeting.command: cannot split the command: No closing quotation"),
    ('instances:\n  greeting: echo "hi\n',
     "node.yml:2: instances.greeting: cannot split the command: No closing quotation"),
    ('instances:\n  greeting:\n    command: [echo, {a: 1}]\n',
     "node.yml:3: instances.greeting.command.1: expected str or int or float, got mapping"),
    ('instances:\n  greeting:\n    command: x\n    numprocesses: -1\n',
     "node.yml:4: instances.greeting.numprocesses: expected a whole number >= 0, got -1"),
    ('instances:\n  greeting:\n    command: x\n    numprocesses: true\n',
     "node.yml:4: instances.greeting.numprocesses: expected int, got bool True"),
    ('instances:\n  greeting:\n    command: x\n    numprocesses: 2.5\n',
     "node.yml:4: instances.greeting.numprocesses: expected int, got float 2.5"),
    ('instances:\n  greeting:\n    command: x\n    stop_timeout: -1\n',
     "node.yml:4: instances.greeting.stop_timeout: expected a number >= 0, got -1.0"),
    ('instances:\n  greeting:\n    command: x\n    stop_timeout: soon\n',
     "node.yml:4: instances.greeting.stop_timeout: expected float, got str 'soon'"),
    ('instances:\n  greeting:\n    command: x\n    max_restarts: -2\n',
     "node.yml:4: instances.greeting.max_restarts: expected a whole number >= 0, got -2"),
    ('instances:\n  greeting:\n    command: x\n    restart: sometimes\n',
     "node.yml:4: instances.greeting.restart: expected one of: always, on-failure, never, got 'sometimes'"),
    ('instances:\n  greeting:\n    command: x\n    cwd: nowhere\n',
     "node.yml:4: instances.greeting.cwd: no such directory: "),
    ('sockets:\n  web: {port: 1}\ninstances:\n  greeting:\n    command: x\n    sockets: [web, api]\n',
     "node.yml:6: instances.greeting.sockets.1: unknown socket 'api' (declared under sockets: web)"),
    ('instances:\n  greeting:\n    command: x\n    sockets: api\n',
     "node.yml:4: instances.greeting.sockets: unknown socket 'api' (declared under sockets: none)"),
    ('instances:\n  greeting:\n    command: x\n    sockets: [1]\n',
     "node.yml:4: instances.greeting.sockets.0: expected str, got int 1"),
    ('instances:\n  greeting:\n    command: x\n    sockets: {a: 1}\n',
     "node.yml:4: instances.greeting.sockets: expected list or str, got mapping"),
    ('instances:\n  a: x\n  greeting:\n    command: x\n    depends_on: [a,\n      redis]\n',
     "node.yml:6: instances.greeting.depends_on.1: unknown instance 'redis' (instances: a, greeting)"),
    ('instances:\n  greeting:\n    command: x\n    depends_on: greeting\n',
     "node.yml:4: instances.greeting.depends_on: an instance cannot depend on itself"),
    ('instances:\n  a: {command: x, depends_on: b}\n  b: {command: x, depends_on: [c]}\n'
     '  c: {command: x, depends_on: [a]}\n',
     "node.yml:2: instances.a.depends_on: dependency cycle: a → b → c → a"),
    ('instances:\n  x: {command: x, depends_on: b}\n  a: {command: x, depends_on: b}\n'
     '  b: {command: x, depends_on: [a]}\n',
     "node.yml:4: instances.b.depends_on: dependency cycle: b → a → b"),
    ('instances:\n  greeting:\n    command: x\n    ready: tcp\n',
     "node.yml:4: instances.greeting.ready: expected a mapping, got str 'tcp'"),
    ('instances:\n  greeting:\n    command: x\n    ready: {timeout: 3}\n',
     "node.yml:4: instances.greeting.ready: expected exactly one of: tcp, http, log, registered"),
    ('instances:\n  greeting:\n    command: x\n    ready: {tcp: 1, log: up}\n',
     "node.yml:4: instances.greeting.ready: expected exactly one of: tcp, http, log, registered (got tcp, log)"),
    ('instances:\n  greeting:\n    command: x\n    ready:\n      tpc: 1\n',
     "node.yml:5: instances.greeting.ready: unknown key 'tpc' (expected one of: http, log, registered, "
     "tcp, timeout); did you mean 'tcp'?"),
    ('instances:\n  greeting:\n    command: x\n    ready:\n      tcp: 70000\n',
     "node.yml:5: instances.greeting.ready.tcp: expected a port 1..65535 or 'host:port', got 70000"),
    ('instances:\n  greeting:\n    command: x\n    ready:\n      tcp: "db"\n',
     "node.yml:5: instances.greeting.ready.tcp: expected a port 1..65535 or 'host:port', got 'db'"),
    ('instances:\n  greeting:\n    command: x\n    ready:\n      http: /health\n',
     "node.yml:5: instances.greeting.ready.http: a path needs a socket on the instance"),
    ('instances:\n  greeting:\n    command: x\n    ready:\n      http: health\n',
     "node.yml:5: instances.greeting.ready.http: expected an http:// URL or a '/path', got 'health'"),
    ('instances:\n  greeting:\n    command: x\n    ready:\n      http: "http://127.0.0.1:99999/"\n',
     "node.yml:5: instances.greeting.ready.http: expected a port 1..65535 in 'http://127.0.0.1:99999/'"),
    ('instances:\n  greeting:\n    command: x\n    ready:\n      log: ""\n',
     "node.yml:5: instances.greeting.ready.log: expected the text to wait for"),
    ('instances:\n  greeting:\n    command: x\n    ready:\n      registered: false\n',
     "node.yml:5: instances.greeting.ready.registered: expected true"),
    ('instances:\n  greeting:\n    command: x\n    ready:\n      tcp: 1\n      timeout: 0\n',
     "node.yml:6: instances.greeting.ready.timeout: expected a number of seconds > 0, got 0.0"),
    ('sockets:\n  web: {port: 0}\ninstances: {}\n', "node.yml:2: sockets.web.port: expected a port 1..65535, got 0"),
    ('sockets:\n  web: {host: 1.2.3.4}\ninstances: {}\n', "node.yml:2: sockets.web.port: missing"),
    ('sockets:\n  web: {port: 1, hots: x}\ninstances: {}\n',
     "node.yml:2: sockets.web: unknown key 'hots' (expected one of: host, port); did you mean 'host'?"),
    ('sockets:\n  web: 4080\ninstances: {}\n', "node.yml:2: sockets.web: expected a mapping, got int 4080"),
    ('sockets:\n  web: {port: 4080}\n  api:\n    port: 4080\ninstances: {}\n',
     "node.yml:4: sockets.api.port: 0.0.0.0:4080 is already socket 'web'"),
    ('env: [A]\ninstances: {}\n', "node.yml:1: env: expected a mapping, got list"),
    ('env:\n  A: {b: 1}\ninstances: {}\n', "node.yml:2: env.A: expected str or int or float or bool, got mapping"),
    ('instances:\n  g:\n    command: x\n    env:\n      A: [1]\n',
     "node.yml:5: instances.g.env.A: expected str or int or float or bool, got list"),
    ('instances:\n  g:\n    command: x\n    env:\n      A: null\n',
     "node.yml:5: instances.g.env.A: expected str or int or float or bool, got null"),
])
def test_errors(tmp_path, text, expected):
    assert error_of(text, base_dir=str(tmp_path)).startswith(expected)


def test_unset_variable_is_an_error():
    assert error_of('instances:\n  a: run ${NOPE}\n') == \
        'node.yml:2: instances.a: environment variable NOPE is not set'


# ---------------------------------------------------------------- diff


def edited(old_text, new_text):
    assert old_text in EXAMPLE
    return diff(parse(EXAMPLE), parse(EXAMPLE.replace(old_text, new_text)))


def test_identical_is_empty():
    changes = diff(parse(EXAMPLE), parse(EXAMPLE + '\n# a comment\n'))
    assert changes.empty and changes.describe() == []
    assert changes == Changes([], [], [], {}, [], [])


def test_moving_a_block_changes_nothing():
    moved = EXAMPLE.replace('  listen:   {command: fannode instance --config conf/listen.yml, numprocesses: 4}\n', '')
    moved += '  listen:   {command: fannode instance --config conf/listen.yml, numprocesses: 4}\n'
    assert diff(parse(EXAMPLE), parse(moved)).empty


def test_scale_only():
    changes = edited('conf/greeting.yml, numprocesses: 3', 'conf/greeting.yml, numprocesses: 5')
    assert changes.scaled == {'greeting': 5}
    assert not (changes.added or changes.removed or changes.restarted or changes.updated or changes.node)
    assert changes.describe() == ['greeting: 3 → 5 processes']


def test_scale_plus_in_place_option():
    changes = edited('conf/greeting.yml, numprocesses: 3', 'conf/greeting.yml, numprocesses: 1, restart: never')
    assert changes.scaled == {'greeting': 1}
    assert changes.updated == ['greeting']
    assert changes.restarted == []


def test_add_and_remove():
    changes = edited('  listen:   {command: fannode instance --config conf/listen.yml, numprocesses: 4}\n',
                     '  cron: sleep 60\n')
    assert changes.added == ['cron'] and changes.removed == ['listen']
    assert changes.describe() == ['cron: added', 'listen: removed']


def test_command_change_restarts_and_wins_over_scale():
    changes = edited('conf/greeting.yml, numprocesses: 3', 'conf/greeting2.yml, numprocesses: 5, rollout: false')
    assert changes.restarted == ['greeting'] and changes.scaled == {}
    assert changes.describe() == ['greeting: restarted (command changed)']


def test_block_env_cwd_and_stop_timeout_restart(tmp_path):
    (tmp_path / 'w').mkdir()
    old = parse(EXAMPLE, base_dir=str(tmp_path))
    new = parse(EXAMPLE.replace('restart: on-failure', 'restart: on-failure\n    env: {A: 1}\n    cwd: w\n'
                                '    stop_timeout: 1'), base_dir=str(tmp_path))
    changes = diff(old, new)
    assert changes.restarted == ['redis']
    assert changes.describe() == ['redis: restarted (env, cwd, stop_timeout changed)']


def test_top_level_env_restarts_every_block():
    changes = edited('env: {PYTHONPATH: services}', 'env: {PYTHONPATH: services, X: 1}')
    assert changes.rolling == ['web', 'greeting', 'listen'] and changes.restarted == ['redis']  # services roll
    assert 'web: rolling replace (env changed)' in changes.describe()


def test_block_overriding_the_changed_variable_is_not_restarted():
    old = parse('env: {A: 1}\ninstances:\n  a: {command: x, env: {A: 2}}\n  b: x\n')
    new = parse('env: {A: 3}\ninstances:\n  a: {command: x, env: {A: 2}}\n  b: x\n')
    assert diff(old, new).restarted == ['b']


def test_restart_policy_change_is_updated_in_place():
    changes = edited('restart: on-failure', 'restart: never\n    max_restarts: 3')
    assert changes.updated == ['redis'] and not changes.restarted
    assert changes.describe() == ['redis: updated (restart, max_restarts changed)']
    changes = edited('ready: {tcp: 6390}', 'ready: {tcp: 6390, timeout: 5}')
    assert changes.updated == ['redis']
    changes = edited(', depends_on: [greeting]', ', depends_on: [greeting, listen]')
    assert changes.updated == ['web'] and changes.describe() == ['web: updated (depends_on changed)']


def test_sockets_list_change_restarts():
    changes = edited('conf/greeting.yml, numprocesses: 3',
                     'conf/greeting.yml, numprocesses: 3, sockets: [web], rollout: false')
    assert changes.restarted == ['greeting']
    assert changes.describe() == ['greeting: restarted (sockets changed)']


def test_registry_and_events_change_are_node_reasons():
    changes = edited('registry: hub ', 'registry: zookeeper://zk1:2181/fannode ')
    assert changes.node == ['registry changed: hub://127.0.0.1:4010 → zookeeper://zk1:2181/fannode']
    assert not changes.empty
    assert changes.describe() == []  # not applied live, so not described as a change
    changes = edited('events: hub', 'events: amqp://rabbit/')
    assert changes.node == ['events changed: hub://127.0.0.1:4010 → amqp://rabbit/']
    changes = edited('events: hub', 'events: amqp://fannode:s3cret@rabbit/')  # printed: no password
    assert changes.node == ['events changed: hub://127.0.0.1:4010 → amqp://fannode:***@rabbit/']


def test_socket_changes():
    # a new socket is fine live
    changes = edited('  web: {host: 0.0.0.0, port: 4080}\n',
                     '  web: {host: 0.0.0.0, port: 4080}\n  admin: {port: 4090}\n')
    assert changes.empty
    changes = edited('port: 4080', 'port: 4081')
    assert changes.node == ['socket web changed: 0.0.0.0:4080 → 0.0.0.0:4081']
    assert changes.restarted == []
    # removing an unused socket is fine; removing one in use needs a node restart
    old = parse('sockets: {a: {port: 1}, b: {port: 2}}\ninstances:\n  x: {command: x, sockets: [a]}\n')
    assert diff(old, parse('sockets: {a: {port: 1}}\ninstances:\n  x: {command: x, sockets: [a]}\n')).empty
    changes = diff(old, parse('sockets: {b: {port: 2}}\ninstances:\n  x: x\n'))
    assert changes.node == ['socket a removed while in use']
    assert changes.restarted == ['x']


def test_specs_are_values():
    a = parse(EXAMPLE)
    b = parse(EXAMPLE)
    assert a == b and isinstance(a, Topology)
    spec = a.instances['redis']
    assert isinstance(spec, InstanceSpec) and hash(spec) == hash(b.instances['redis'])


# ---------------------------------------------------------------- relative paths, the environment


def test_a_relative_pythonpath_is_relative_to_node_yml_whatever_the_cwd(tmp_path):
    (tmp_path / 'sub').mkdir()
    topo = parse('''\
        env: {PYTHONPATH: 'services:/abs/lib'}
        instances:
          a: {command: x, cwd: sub}
          b: {command: x, env: {PYTHONPATH: lib}}
        ''', base_dir=str(tmp_path))
    assert topo.instances['a'].env_dict()['PYTHONPATH'] == '%s:/abs/lib' % (tmp_path / 'services')
    assert topo.instances['a'].cwd == str(tmp_path / 'sub')
    assert topo.instances['b'].env_dict()['PYTHONPATH'] == str(tmp_path / 'lib')


def test_the_repository_node_yml_follows_both_environment_variables():
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2] / 'node.yml'
    env = {'FANNODE_REGISTRY': 'zookeeper://zk1:2181/fannode', 'FANNODE_EVENTS': 'amqp://rabbit:5672/%2F'}
    topo = load(repo, env=env)
    assert (topo.registry, topo.events) == (env['FANNODE_REGISTRY'], env['FANNODE_EVENTS'])
    assert not topo.hosts_hub and topo.runs_log_hub
    topo = load(repo, env={})
    assert topo.registry == topo.events == DEFAULT_HUB


def test_a_node_yml_that_is_not_a_regular_file_is_refused_unread(tmp_path):
    import os
    fifo = tmp_path / 'fifo.yml'
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r'fifo\.yml: not a regular file'):
        load(fifo, env={})  # would wait for ever for a writer


def test_a_long_name_is_refused_without_repeating_it():
    message = error_of('instances:\n  %s: x\n' % ('n' * 1000))  # YAML's longest plain key
    assert len(message) < 300 and '(1000 characters)' in message
    assert message.startswith("node.yml:2: instances: bad instance name 'nnn")
    message = error_of('sockets:\n  %s: {port: 1}\ninstances: {}\n' % ('s' * 65))
    assert message.startswith("node.yml:2: sockets.%s: bad socket name '%s'" % ('s' * 65, 's' * 65))
