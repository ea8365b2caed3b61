import importlib
import os
import sys
import textwrap

import pytest
from hypothesis import given, strategies as st

from fannode.core.config import Config, import_object, load_config, loads_config
from fannode.exceptions import ConfigError


def load(text, env=None, source='conf/x.yml'):
    return loads_config(textwrap.dedent(text), source, env={} if env is None else env)


def error_of(func, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert '\n' not in message
    return message


@pytest.fixture
def conf_dir(tmp_path, monkeypatch):
    """cwd is tmp_path, so paths like 'conf/x.yml' are shown as given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'conf').mkdir()
    return tmp_path / 'conf'


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Write importable modules into tmp_path/services; forget them afterwards."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'services').mkdir()
    monkeypatch.syspath_prepend('services')
    names = []

    def write(name, source):
        (tmp_path / 'services' / (name + '.py')).write_text(textwrap.dedent(source))
        names.append(name)
        sys.modules.pop(name, None)  # a module of that name imported earlier must not answer
        importlib.invalidate_caches()

    saved = dict(sys.modules)
    yield write
    for name in names:  # ours go; one another test had imported under that name comes back
        sys.modules.pop(name, None)
        if name in saved:
            sys.modules[name] = saved[name]


SAMPLE = '''\
registry: hub
node:
  port: 4080
  debug: false
instances:
  - name: a
    port: 1
  - {name: b}
'''


# --- loading files ---------------------------------------------------------------------------

def test_load_config_reads_file(conf_dir):
    (conf_dir / 'x.yml').write_text(SAMPLE)
    config = load_config('conf/x.yml')
    assert config.source == 'conf/x.yml'
    assert config.to_dict() == {'registry': 'hub', 'node': {'port': 4080, 'debug': False},
                                'instances': [{'name': 'a', 'port': 1}, {'name': 'b'}]}


def test_load_config_accepts_path_objects(conf_dir):
    (conf_dir / 'x.yml').write_text('a: 1\n')
    assert load_config(conf_dir / 'x.yml')['a'] == 1


def test_missing_file(conf_dir):
    assert error_of(load_config, 'conf/nope.yml') == 'conf/nope.yml: no such file'


def test_directory(conf_dir):
    assert error_of(load_config, 'conf') == 'conf: is a directory, not a file'


@pytest.mark.skipif(os.name != 'posix' or os.geteuid() == 0, reason='root reads anything')
def test_unreadable(conf_dir):
    (conf_dir / 'x.yml').write_text('a: 1\n')
    (conf_dir / 'x.yml').chmod(0)
    assert error_of(load_config, 'conf/x.yml') == 'conf/x.yml: cannot read: Permission denied'


def test_read_error_is_one_line(conf_dir, monkeypatch):
    def fail(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr('fannode.core.config.open', fail, raising=False)
    assert error_of(load_config, 'conf/x.yml') == 'conf/x.yml: cannot read: Permission denied'


def test_not_utf8(conf_dir):
    (conf_dir / 'x.yml').write_bytes(b'a: 1\nb: caf\xe9\n')
    assert error_of(load_config, 'conf/x.yml') == 'conf/x.yml:2: not UTF-8 (byte 0xe9)'


def test_bad_yaml(conf_dir):
    (conf_dir / 'x.yml').write_text('a: 1\nb: 2\nc: 3\nd: e: f\n')
    assert error_of(load_config, 'conf/x.yml') == \
        'conf/x.yml:4: bad YAML: mapping values are not allowed here'


def test_bad_yaml_messages_are_one_line():
    assert error_of(load, 'a: [1, 2\nb: 3\n') == \
        "conf/x.yml:2: bad YAML: expected ',' or ']', but got ':'"
    assert error_of(load, 'a: 1\n---\nb: 2\n') == \
        'conf/x.yml:2: bad YAML: expected a single document in the stream, but found another document'
    assert error_of(load, 'a: 1\nb: \x07\n') == \
        'conf/x.yml:2: bad YAML: unacceptable character #x0007'


@pytest.mark.parametrize('text', ['', '\n', '# only a comment\n', '---\n'])
def test_empty_file_is_empty_config(conf_dir, text):
    (conf_dir / 'x.yml').write_text(text)
    config = load_config('conf/x.yml')
    assert len(config) == 0 and config.to_dict() == {}


def test_top_level_must_be_a_mapping():
    assert error_of(load, '\n- a\n- b\n') == 'conf/x.yml:2: top level must be a mapping, got list'
    assert error_of(load, 'hello\n') == "conf/x.yml:1: top level must be a mapping, got str 'hello'"


def test_loads_config_default_source():
    assert loads_config('a: 1').source == '<string>'
    assert error_of(loads_config, 'a: ${NOPE}', env={}) == \
        '<string>:1: a: environment variable NOPE is not set'


def test_utf8_bom_is_accepted(conf_dir):
    (conf_dir / 'x.yml').write_bytes(b'\xef\xbb\xbfa: 1\n')
    assert load_config('conf/x.yml')['a'] == 1


# --- environment substitution ----------------------------------------------------------------

def test_env_reference_and_defaults():
    config = load('''\
        a: ${HOST}
        b: ${MISSING:-fallback}
        c: ${EMPTY:-used for empty too}
        d: http://${HOST:-localhost}:${PORT:-80}/x
        e: ${EMPTY}
        f: x${EMPTY}y
    ''', env={'HOST': 'example.org', 'EMPTY': ''})
    assert config.to_dict() == {'a': 'example.org', 'b': 'fallback', 'c': 'used for empty too',
                                'd': 'http://example.org:80/x', 'e': None, 'f': 'xy'}


def test_env_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv('FANNODE_TEST_PORT', '9000')
    assert loads_config('port: ${FANNODE_TEST_PORT}')['port'] == 9000


def test_exactly_one_reference_is_typed():
    env = {'PORT': '4080', 'ON': 'true', 'RATIO': '0.5', 'EMPTY': '', 'WORD': 'hello'}
    config = load('''\
        port: ${PORT}
        default_port: ${NOPE:-4080}
        flag: ${ON}
        ratio: ${RATIO}
        empty: ${EMPTY}
        word: ${WORD}
        quoted: "${PORT}"
        single: '${PORT}'
        suffixed: ${PORT}0
        two: ${PORT}${PORT}
    ''', env=env)
    assert config.to_dict() == {'port': 4080, 'default_port': 4080, 'flag': True, 'ratio': 0.5,
                                'empty': None, 'word': 'hello', 'quoted': '4080', 'single': '4080',
                                'suffixed': '40800', 'two': '40804080'}


def test_variable_contents_cannot_change_structure():
    env = {'MAP': 'a: b', 'LIST': '[1, 2]', 'REF': '${OTHER}', 'OTHER': 'no'}
    config = load('m: ${MAP}\nl: ${LIST}\nr: ${REF}\n', env=env)
    assert config.to_dict() == {'m': 'a: b', 'l': '[1, 2]', 'r': '${OTHER}'}


def test_dollar_escape():
    config = load('a: $${HOME}\nb: cost $$5 $${X:-y} ${V}\n', env={'V': 'v', 'HOME': '/root'})
    assert config['a'] == '${HOME}'
    assert config['b'] == 'cost $$5 ${X:-y} v'


def test_keys_are_not_substituted():
    assert load('${KEY}: 1\n', env={'KEY': 'k'}).to_dict() == {'${KEY}': 1}


def test_substitution_in_lists_and_aliases():
    config = load('''\
        base: &base
          url: ${URL}
        copy: *base
        ports:
          - ${P1}
          - ${P2:-2}
    ''', env={'URL': 'u', 'P1': '1'})
    assert config.to_dict() == {'base': {'url': 'u'}, 'copy': {'url': 'u'}, 'ports': [1, 2]}


def test_unset_variable_error():
    text = '''\
        node:
          name: x
          port: ${PORT}
        instances:
          - url: http://${HOST:-h}:${PORT}/
    '''
    assert error_of(load, text) == 'conf/x.yml:3: node.port: environment variable PORT is not set'
    assert error_of(load, 'instances:\n  - url: http://${HOST:-h}:${PORT}/\n') == \
        'conf/x.yml:2: instances.0.url: environment variable PORT is not set'


def test_bad_reference_error():
    assert error_of(load, 'a: 1\nb: ${1X}\n') == \
        "conf/x.yml:2: b: bad environment reference '${1X}' (expected ${NAME} or ${NAME:-default})"
    assert error_of(load, 'b: x ${OPEN\n') == \
        "conf/x.yml:1: b: bad environment reference '${OPEN' (expected ${NAME} or ${NAME:-default})"


@given(st.text())
def test_quoted_reference_is_the_exact_value(value):
    config = loads_config('a: "${V}"\nb: ${V}\nc: plain\n', env={'V': value})
    assert config['a'] == value
    assert not isinstance(config.get('b'), (Config, list))  # a variable never makes structure
    assert config['c'] == 'plain'


# --- line numbers and errors -----------------------------------------------------------------

def test_error_names_line_and_full_key():
    config = load(SAMPLE)
    assert str(config.error('registry', 'bad')) == 'conf/x.yml:1: registry: bad'
    assert str(config.error('node.debug', 'bad')) == 'conf/x.yml:4: node.debug: bad'
    assert str(config.error('instances.1', 'bad')) == 'conf/x.yml:8: instances.1: bad'
    assert str(config.error('instances.0.port', 'bad')) == 'conf/x.yml:7: instances.0.port: bad'
    # an absent key gets the line of its nearest known parent
    assert str(config.error('node.nope.deeper', 'bad')) == 'conf/x.yml:2: node.nope.deeper: bad'
    assert str(config.error('nope', 'bad')) == 'conf/x.yml: nope: bad'


def test_duplicate_key_last_wins_with_its_line():
    config = load('a: 1\nb: 2\na: 3\n')
    assert config['a'] == 3
    assert str(config.error('a', 'x')) == 'conf/x.yml:3: a: x'


def test_config_without_lines():
    config = Config({'a': {'b': 1}})
    assert config.source == '<config>'
    assert error_of(config.__getitem__, 'a.c') == '<config>: a.c: missing'


# --- lookups ---------------------------------------------------------------------------------

def test_dotted_get():
    config = load(SAMPLE)
    assert config.get('node.port') == 4080
    assert config['node.port'] == 4080
    assert config.get('registry') == 'hub'
    assert config.get('instances.1.name') == 'b'
    assert config.get('node.nope') is None
    assert config.get('node.nope', 7) == 7
    assert config.get('registry.deeper') is None
    assert config.get('instances.5') is None


def test_nested_values_are_views():
    config = load(SAMPLE)
    node = config['node']
    assert isinstance(node, Config)
    assert node.prefix == 'node' and node.source == 'conf/x.yml'
    assert node['port'] == 4080
    assert error_of(node.__getitem__, 'nope') == 'conf/x.yml:2: node.nope: missing'
    first = config['instances'][0]
    assert isinstance(first, Config) and first.prefix == 'instances.0'
    assert error_of(first.require, 'port', str) == \
        'conf/x.yml:7: instances.0.port: expected str, got int 1'


def test_missing_key_error():
    config = load(SAMPLE)
    assert error_of(config.__getitem__, 'nope') == 'conf/x.yml: nope: missing'
    assert error_of(config.__getitem__, 'node.port.x') == 'conf/x.yml:3: node.port.x: missing'


def test_mapping_protocol():
    config = load(SAMPLE)
    assert 'node.port' in config and 'registry' in config
    assert 'node.nope' not in config and 'nope' not in config
    assert list(config) == ['registry', 'node', 'instances']
    assert len(config) == 3
    assert dict(config['node'].items()) == {'port': 4080, 'debug': False}
    assert config['node'] == {'port': 4080, 'debug': False}
    with pytest.raises(TypeError):
        config['registry'] = 'x'


def test_non_string_and_dotted_keys():
    config = load('1: one\n"a.b": 2\nlevels: {3: three}\n')
    assert config[1] == 'one' and config.get('1') == 'one'
    assert config['a.b'] == 2
    assert config.get('levels.3') == 'three'
    assert [config[key] for key in config] == ['one', 2, {3: 'three'}]
    assert str(config.error('levels.3', 'x')) == 'conf/x.yml:3: levels.3: x'


def test_to_dict_is_a_copy_and_repr():
    config = load('a: {b: [1, {c: 2}]}\n')
    plain = config.to_dict()
    plain['a']['b'][1]['c'] = 99
    assert config['a.b.1.c'] == 2
    assert type(config.to_dict()['a']) is dict
    assert repr(config['a']) == "Config({'b': [1, {'c': 2}]}, source='conf/x.yml', prefix='a')"


def test_section():
    config = load(SAMPLE + 'events:\n')
    node = config.section('node')
    assert node.prefix == 'node' and node['port'] == 4080
    empty = config.section('interfaces')
    assert len(empty) == 0 and empty.prefix == 'interfaces'
    assert len(config.section('events')) == 0  # `events:` with nothing under it
    assert error_of(empty.require, 'x', int) == 'conf/x.yml: interfaces.x: missing'
    assert error_of(config.section, 'instances') == \
        'conf/x.yml:5: instances: expected a mapping, got list'
    assert error_of(node.section, 'port') == 'conf/x.yml:3: node.port: expected a mapping, got int 4080'


# --- require ---------------------------------------------------------------------------------

def test_require():
    config = load('port: 80\nname: abc\nratio: 1\nflag: true\nnothing:\nsub: {a: 1}\n')
    assert config.require('port', int) == 80
    assert config.require('name', (int, str)) == 'abc'
    assert config.require('flag', bool) is True
    ratio = config.require('ratio', float)
    assert ratio == 1.0 and type(ratio) is float
    assert config.require('nope', int, default=5) == 5
    assert config.require('nope', int, default=None) is None
    assert isinstance(config.require('sub', dict), Config)


def test_require_errors():
    config = load('port: 80\nname: abc\nflag: true\nnothing:\nsub: {a: 1}\nl: [1]\n')
    assert error_of(config.require, 'name', int) == "conf/x.yml:2: name: expected int, got str 'abc'"
    assert error_of(config.require, 'flag', int) == 'conf/x.yml:3: flag: expected int, got bool True'
    assert error_of(config.require, 'flag', float) == 'conf/x.yml:3: flag: expected float, got bool True'
    assert error_of(config.require, 'port', (str, bool)) == \
        'conf/x.yml:1: port: expected str or bool, got int 80'
    assert error_of(config.require, 'nothing', str) == 'conf/x.yml:4: nothing: expected str, got null'
    assert error_of(config.require, 'sub', list) == 'conf/x.yml:5: sub: expected list, got mapping'
    assert error_of(config.require, 'l', dict) == 'conf/x.yml:6: l: expected mapping, got list'
    assert error_of(config.require, 'nope', int) == 'conf/x.yml: nope: missing'
    assert error_of(config.require, 'sub.b', int) == 'conf/x.yml:5: sub.b: missing'
    long = load('s: %s\n' % ('x' * 100))
    assert error_of(long.require, 's', int) == \
        "conf/x.yml:1: s: expected int, got str '%s..." % ('x' * 36)


# --- check_keys ------------------------------------------------------------------------------

def test_check_keys():
    config = load('registry: hub\nintrefaces: {}\n')
    config.check_keys(['registry', 'intrefaces'])
    assert error_of(config.check_keys, ['events', 'interfaces', 'registry']) == (
        "conf/x.yml:2: unknown key 'intrefaces' (expected one of: events, interfaces, registry);"
        " did you mean 'interfaces'?")
    assert error_of(config.check_keys, ['registry', 'events']) == \
        "conf/x.yml:2: unknown key 'intrefaces' (expected one of: events, registry)"


def test_check_keys_in_a_section_names_it():
    config = load('node:\n  port: 1\n  prot: 2\n')
    assert error_of(config.section('node').check_keys, ['port', 'host']) == \
        "conf/x.yml:3: node: unknown key 'prot' (expected one of: host, port); did you mean 'port'?"
    assert error_of(config.section('node').check_keys, []) == \
        "conf/x.yml:2: node: unknown key 'port' (expected no keys here)"
    assert error_of(load('7: x\n').check_keys, ['a']) == \
        "conf/x.yml:1: unknown key '7' (expected one of: a)"


# --- create_instance and import_object -------------------------------------------------------

GREETING = '''\
    class Greeting:
        def __init__(self, greeting='hello', container=None):
            self.greeting = greeting
            self.container = container

    class Broken:
        def __init__(self):
            len(1, 2)

    def make(x):
        return ('made', x)
'''


def test_create_instance_forms(module):
    module('greeting', GREETING)
    config = load('''\
        a: greeting:Greeting
        b: greeting.Greeting
        c:
          class: greeting:Greeting
          greeting: hi
        d: {class: greeting:make, x: [1, {y: 2}]}
    ''')
    assert config.create_instance('a').greeting == 'hello'
    assert config.create_instance('b').greeting == 'hello'
    c = config.create_instance('c', container='box')
    assert (c.greeting, c.container) == ('hi', 'box')
    made = config.create_instance('d')
    assert made == ('made', [1, {'y': 2}]) and type(made[1][1]) is dict


def test_create_instance_import_errors(module):
    module('greeting', GREETING)
    config = load('interfaces:\n  Greeting:\n    class: greeting:Greting\n  Other: nomodule:X\n')
    assert error_of(config.create_instance, 'interfaces.Greeting') == (
        "conf/x.yml:3: interfaces.Greeting.class: cannot import 'greeting:Greting': "
        "module 'greeting' has no attribute 'Greting'")
    assert error_of(config.section('interfaces').create_instance, 'Other') == (
        "conf/x.yml:4: interfaces.Other: cannot import 'nomodule:X': No module named 'nomodule'")


def test_create_instance_syntax_error_in_module(module):
    module('greeting', 'import os\n\nx = = 1\n')
    config = load('interfaces:\n  Greeting:\n    class: greeting:Greeting\n')
    assert error_of(config.create_instance, 'interfaces.Greeting') == (
        "conf/x.yml:3: interfaces.Greeting.class: cannot import 'greeting:Greeting': "
        "SyntaxError in services/greeting.py line 3: invalid syntax")


def test_create_instance_bad_arguments(module):
    module('greeting', GREETING)
    config = load('g:\n  class: greeting:Greeting\n  greting: hi\nb: greeting:Broken\n'
                  'c: {class: greeting:Greeting, container: x}\n')
    assert error_of(config.create_instance, 'g') == (
        "conf/x.yml:1: g: cannot create 'greeting:Greeting': "
        "Greeting.__init__() got an unexpected keyword argument 'greting'")
    with pytest.raises(TypeError, match='len'):  # a bug inside the constructor is not a config error
        config.create_instance('b')
    assert error_of(config.create_instance, 'c', container='box') == \
        'conf/x.yml:5: c.container: cannot be set in the config (fannode sets it)'


def test_create_instance_bad_values(module):
    config = load('a: [1]\nb: {greeting: hi}\nc: {class: 5}\n')
    assert error_of(config.create_instance, 'a') == \
        "conf/x.yml:1: a: expected 'module:Class' or a mapping with a 'class' key, got list"
    assert error_of(config.create_instance, 'b') == 'conf/x.yml:2: b.class: missing'
    assert error_of(config.create_instance, 'c') == 'conf/x.yml:3: c.class: expected str, got int 5'
    assert error_of(config.create_instance, 'nope') == 'conf/x.yml: nope: missing'
    assert error_of(config.create_instance, 'a.0') == \
        "conf/x.yml:1: a.0: expected 'module:Class' or a mapping with a 'class' key, got int 1"


def test_import_object(module):
    module('greeting', GREETING)
    assert import_object('greeting:Greeting').__name__ == 'Greeting'
    assert import_object('greeting.Greeting').__name__ == 'Greeting'
    assert import_object('greeting:Greeting.__init__').__name__ == '__init__'
    assert import_object('os.path:join') is os.path.join
    assert import_object('os.path.join') is os.path.join


@pytest.mark.parametrize('spec, message', [
    ('greeting', "cannot import 'greeting': expected 'module:name' or 'module.name'"),
    ('greeting:', "cannot import 'greeting:': expected 'module:name' or 'module.name'"),
    ('greeting:Greeting.nope.x',
     "cannot import 'greeting:Greeting.nope.x': 'greeting:Greeting' has no attribute 'nope'"),
    ('nopkg.mod:X', "cannot import 'nopkg.mod:X': No module named 'nopkg'"),
    ('os.nomod:X', "cannot import 'os.nomod:X': No module named 'os.nomod'; 'os' is not a package"),
])
def test_import_object_errors(module, spec, message):
    module('greeting', GREETING)
    with pytest.raises(ImportError) as info:
        import_object(spec)
    assert str(info.value) == message


def test_import_object_error_raised_inside_the_module(module):
    module('uses_missing', 'import os\nimport surely_not_installed_xyz\n')
    module('raises', 'A = 1\n\nraise ValueError("bad\\nvalue")\n')
    with pytest.raises(ImportError) as info:
        import_object('uses_missing:X')
    assert str(info.value) == ("cannot import 'uses_missing:X': ModuleNotFoundError in "
                               "services/uses_missing.py line 2: No module named 'surely_not_installed_xyz'")
    with pytest.raises(ImportError) as info:
        import_object('raises:A')
    assert str(info.value) == "cannot import 'raises:A': ValueError in services/raises.py line 3: bad value"
