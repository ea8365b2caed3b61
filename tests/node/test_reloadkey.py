"""The `reload:` key of node.yml and which changed files restart which block."""
import os
import textwrap
from types import SimpleNamespace

import pytest

from fannode.exceptions import ConfigError
from fannode.node.changes import diff
from fannode.node.reloadkey import SourceWatch, default_paths
from fannode.node.topology import loads


@pytest.fixture
def project(tmp_path):
    for d in ('services', 'lib', 'web/templates'):
        (tmp_path / d).mkdir(parents=True)
    return tmp_path


def parse(project, block, top=''):
    text = 'env: {PYTHONPATH: services}\n%sinstances:\n  a:\n    command: fannode instance -c a.yml\n' % top
    text += textwrap.indent(textwrap.dedent(block), '    ')
    return loads(text, 'node.yml', str(project), env={}).instances['a']


def error_of(project, block):
    with pytest.raises(ConfigError) as info:
        parse(project, block)
    assert '\n' not in str(info.value)
    return str(info.value)


def test_no_reload_key_watches_nothing(project):
    assert parse(project, '').reload is None
    assert parse(project, 'reload: false').reload is None


def test_reload_true_watches_the_pythonpath_entries(project):
    assert parse(project, 'reload: true').reload == SourceWatch((str(project / 'services'),))


def test_reload_true_without_pythonpath_watches_the_cwd(project):
    spec = loads('instances:\n  a:\n    command: python app.py\n    cwd: lib\n    reload: true\n', 'node.yml',
                 str(project), env={}).instances['a']
    assert spec.reload == SourceWatch((str(project / 'lib'),))


def test_reload_paths_are_relative_to_node_yml(project):
    assert parse(project, 'reload: lib').reload.paths == (str(project / 'lib'),)
    assert parse(project, 'reload: [lib, services, lib]').reload.paths == (str(project / 'lib'),
                                                                           str(project / 'services'))


def test_reload_mapping_with_globs(project):
    watch = parse(project, 'reload: {paths: [web], include: ["*.py", "*.html"], exclude: "*_test.py"}').reload
    assert watch == SourceWatch((str(project / 'web'),), ('*.py', '*.html'), ('*_test.py',))
    assert parse(project, 'reload: {exclude: [gen_*.py]}').reload == SourceWatch(
        (str(project / 'services'),), ('*.py',), ('gen_*.py',))


@pytest.mark.parametrize('block, message', [
    ('reload: [nowhere]', "node.yml:5: instances.a.reload.0: no such file or directory: "),
    ('reload: 3', 'node.yml:5: instances.a.reload: expected '),
    ('reload: []', 'node.yml:5: instances.a.reload: must not be empty'),
    ('reload: {path: [lib]}', "node.yml:5: instances.a.reload: unknown key 'path' (expected one of: exclude, "
                              "include, paths); did you mean 'paths'?"),
    ('reload: {include: [3]}', 'node.yml:5: instances.a.reload.include.0: expected '),
])
def test_bad_reload_values_are_one_line_naming_the_key(project, block, message):
    assert error_of(project, block).startswith(message)


def test_wants_only_matching_files_under_its_paths(tmp_path):
    base = str(tmp_path)
    watch = SourceWatch((os.path.join(base, 'web'),), ('*.py', 'web/templates/*'), ('*_test.py',))
    assert watch.wants(os.path.join(base, 'web', 'app.py'), base)
    assert watch.wants(os.path.join(base, 'web', 'templates', 'index.html'), base)
    assert not watch.wants(os.path.join(base, 'web', 'notes.txt'), base)
    assert not watch.wants(os.path.join(base, 'web', 'app_test.py'), base)
    assert not watch.wants(os.path.join(base, 'webby', 'app.py'), base)  # a sibling with the same prefix
    assert not watch.wants(os.path.join(base, 'other.py'), base)


def test_default_paths_skip_entries_that_do_not_exist(project):
    env = {'PYTHONPATH': os.pathsep.join(['services', 'gone', str(project / 'lib')])}
    assert default_paths(str(project), env) == (str(project / 'services'), str(project / 'lib'))
    assert default_paths(str(project), {'PYTHONPATH': 'gone'}) == (str(project),)


def test_changing_reload_applies_in_place(project):
    def topology(block):
        return loads('instances:\n  a:\n    command: sleep 9\n%s' % block, 'node.yml', str(project), env={})
    changes = diff(topology(''), topology('    reload: lib\n'))
    assert changes.updated == ['a'] and not changes.restarted
    assert changes.describe() == ['a: updated (reload changed)']


def test_up_reload_watches_blocks_that_run_python_only(project):
    from fannode.node import autoreload
    text = ('env: {PYTHONPATH: services}\ninstances:\n'
            '  svc: fannode instance -c a.yml\n  script: python3 job.py\n  redis: redis-server\n'
            '  own: {command: redis-server, reload: lib}\n')
    specs = loads(text, 'node.yml', str(project), env={}).instances
    blocks = {name: SimpleNamespace(name=name, spec=spec) for name, spec in specs.items()}
    node = SimpleNamespace(blocks=blocks, directory=str(project), reload_all=False)
    assert autoreload.roots(node) == (str(project / 'lib'),)  # only the block that asks
    node.reload_all = True
    assert {n for n, b in blocks.items() if autoreload.watch_of(node, b)} == {'svc', 'script', 'own'}
    assert autoreload.roots(node) == (str(project / 'lib'), str(project / 'services'))


def test_a_watched_file_is_watched_through_its_directory(project):
    from fannode.node import autoreload
    (project / 'lib' / 'one.py').write_text('')
    specs = loads('instances:\n  a: {command: python3 x.py, reload: lib/one.py}\n', 'node.yml', str(project),
                  env={}).instances
    node = SimpleNamespace(blocks={'a': SimpleNamespace(name='a', spec=specs['a'])}, directory=str(project),
                           reload_all=False)
    assert autoreload.roots(node) == (str(project / 'lib'),)
    watch = specs['a'].reload
    assert watch.wants(str(project / 'lib' / 'one.py'), str(project))
    assert not watch.wants(str(project / 'lib' / 'two.py'), str(project))
