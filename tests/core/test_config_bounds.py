"""Config files that are not what a person writes: YAML alias bombs, recursion, nesting,
values Python cannot make, files too big. Each is refused with one line naming file and
line, before it costs more than the file itself."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from fannode.core import config
from fannode.core.config import load_config, loads_config
from fannode.exceptions import ConfigError

# The classic "billion laughs", 9 levels of 9 aliases: 362 bytes, ~390 million values once
# expanded. The walker that records every key's line used to build them all (938 MiB).
LAUGHS = '\n'.join(['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
    '%s: &%s [%s]' % (n, n, ','.join(['*' + p] * 9)) for p, n in zip('abcdefgh', 'bcdefghi')]) + '\n'


def error_of(text: str, source: str = 'conf/x.yml') -> str:
    with pytest.raises(ConfigError) as info:
        loads_config(text, source, env={})
    message = str(info.value)
    assert '\n' not in message
    return message


def test_an_alias_bomb_is_refused_at_the_line_where_it_grows_too_big():
    bomb = '\n'.join(LAUGHS.splitlines()[:6]) + '\n'  # 9**6 values: ~100 MiB and seconds before
    assert error_of(bomb) == (
        'conf/x.yml:6: more than 100000 values once YAML aliases are expanded '
        '($FANNODE_CONFIG_MAX_VALUES); aliases of aliases multiply')


def test_a_merge_key_bomb_is_refused():
    # `<<` copies the merged mapping's pairs into each merging one: doubling per line
    lines = ['m0: &m0 {k: 1}'] + ['m%d: &m%d {<<: [*m%d, *m%d], k%d: 1}' % (i, i, i - 1, i - 1, i)
                                  for i in range(1, 40)]
    assert error_of('\n'.join(lines) + '\n').startswith('conf/x.yml:15: more than 100000 values')


def test_aliases_within_the_budget_still_work():
    text = textwrap.dedent('''\
        defaults: &defaults {timeout: 3, retries: 2}
        one: {<<: *defaults, timeout: 5}
        two: *defaults
        many: [*defaults, *defaults]
    ''')
    data = loads_config(text, env={}).to_dict()
    assert data['one'] == {'timeout': 5, 'retries': 2}
    assert data['two'] == data['many'][1] == {'timeout': 3, 'retries': 2}


def test_an_alias_inside_its_own_value_is_one_line():
    assert error_of('a: 1\nb: &x [1, *x]\n') == \
        'conf/x.yml:2: bad YAML: an alias refers to a value that contains it'


def test_deep_nesting_is_refused_before_python_recursion_gives_out():
    assert error_of('a:\n  b: ' + '[' * 5000 + ']' * 5000 + '\n') == \
        'conf/x.yml:2: bad YAML: nested deeper than 64 levels'
    # aliases cannot stack nesting either: 40 levels inside 40 levels
    deep = 'a: &a ' + '[' * 40 + ']' * 40 + '\nb: ' + '[' * 40 + '*a' + ']' * 40 + '\n'
    assert error_of(deep) == 'conf/x.yml:2: nested deeper than 64 levels once YAML aliases are expanded'


@pytest.mark.parametrize('value, message', [
    ('1' * 5000, "cannot read '1111111111111111111111111111111111111...': Exceeds the limit (4300 digits)"),
    ('2020-13-45', "cannot read '2020-13-45': month must be in 1..12"),
], ids=['an int of 5000 digits', 'a 13th month'])
def test_a_value_python_cannot_make_is_one_line_with_its_line(value, message):
    assert error_of('a: 1\nb: %s\n' % value).startswith('conf/x.yml:2: bad YAML: ' + message)


def test_a_file_too_big_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    monkeypatch.setattr(config, 'MAX_FILE_BYTES', 1000)
    path = tmp_path / 'big.yml'
    path.write_text('a: 1\n' + '# padding\n' * 200)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == ('%s: larger than 1000 bytes ($FANNODE_CONFIG_MAX_BYTES); '
                               'is it a config file?' % path)
    with pytest.raises(ConfigError):
        loads_config(path.read_text(), 'big.yml')


ATTEMPT = '''
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))
from fannode.core.config import load_config
from fannode.exceptions import ConfigError
try:
    load_config(sys.argv[1])
except ConfigError as e:
    print(e)
'''


@pytest.mark.e2e
def test_the_362_byte_bomb_is_refused_within_a_small_memory_budget(tmp_path):
    path = tmp_path / 'node.yml'
    path.write_text(LAUGHS)
    assert path.stat().st_size < 400
    result = subprocess.run([sys.executable, '-c', ATTEMPT, str(path)], capture_output=True,
                            text=True, timeout=120)
    assert (result.returncode, result.stderr) == (0, '')
    assert result.stdout == ('%s:6: more than 100000 values once YAML aliases are expanded '
                             '($FANNODE_CONFIG_MAX_VALUES); aliases of aliases multiply\n' % path)
