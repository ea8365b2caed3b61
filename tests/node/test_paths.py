"""Where a node keeps its control socket and lock: one node per real file, and a runtime
directory nobody else can write to."""
import os

import pytest

from fannode.exceptions import FannodeError
from fannode.core import rundir
from fannode.node import paths


@pytest.fixture
def no_xdg(tmp_path, monkeypatch):
    """The /tmp fallback, in a directory of the test's own."""
    monkeypatch.delenv('XDG_RUNTIME_DIR', raising=False)
    monkeypatch.setattr(rundir, 'FALLBACK_BASE', str(tmp_path))
    return tmp_path / ('fannode-%d' % os.getuid())


def test_the_same_file_through_a_symlinked_directory_has_one_endpoint(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    (tmp_path / 'real').mkdir()
    (tmp_path / 'real' / 'node.yml').write_text('instances: {}\n')
    (tmp_path / 'link').symlink_to(tmp_path / 'real')
    assert paths.control_endpoint(str(tmp_path / 'link' / 'node.yml')) == \
        paths.control_endpoint(str(tmp_path / 'real' / 'node.yml'))
    assert paths.node_path(str(tmp_path / 'link' / 'node.yml'), 'lock') == \
        paths.node_path(str(tmp_path / 'real' / 'node.yml'), 'lock')


def test_xdg_runtime_dir_is_preferred(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    assert paths.runtime_dir() == str(tmp_path / 'fannode')
    assert os.stat(tmp_path / 'fannode').st_mode & 0o777 == 0o700


def test_the_fallback_is_created_0700(no_xdg):
    old = os.umask(0)  # whatever the umask says
    try:
        assert paths.runtime_dir() == str(no_xdg)
    finally:
        os.umask(old)
    assert os.stat(no_xdg).st_mode & 0o777 == 0o700


def test_a_runtime_dir_of_another_user_is_refused(no_xdg, monkeypatch):
    no_xdg.mkdir(mode=0o700)
    me = os.getuid()
    monkeypatch.setattr(os, 'getuid', lambda: me + 1)  # it was made by "someone else"
    with pytest.raises(FannodeError) as info:
        paths.runtime_dir()
    assert str(info.value) == (
        'the runtime directory %s belongs to uid %d, not to you (uid %d): remove it, or set '
        '$XDG_RUNTIME_DIR to a directory of your own' % (no_xdg.parent / ('fannode-%d' % (me + 1)), me, me + 1))


@pytest.mark.parametrize('mode', [0o777, 0o770, 0o702])
def test_a_runtime_dir_others_may_write_to_is_refused(no_xdg, mode):
    no_xdg.mkdir()
    no_xdg.chmod(mode)
    with pytest.raises(FannodeError, match=r'is writable by others \(mode %03o\): chmod 700 it' % mode):
        paths.runtime_dir()


def test_a_symlink_in_place_of_the_runtime_dir_is_refused(no_xdg, tmp_path):
    (tmp_path / 'elsewhere').mkdir(mode=0o700)
    no_xdg.symlink_to(tmp_path / 'elsewhere')
    with pytest.raises(FannodeError, match='is not a directory'):
        paths.runtime_dir()


def test_private_file(tmp_path):
    path = tmp_path / 'f'
    path.write_text('')
    path.chmod(0o666)
    paths.private_file(str(path))
    assert path.stat().st_mode & 0o777 == 0o600
    paths.private_file(str(tmp_path / 'absent'))  # gone already: nothing to do


def test_a_runtime_dir_too_long_for_a_socket_path_is_one_line(tmp_path, monkeypatch):
    deep = tmp_path / ('d' * 100)
    deep.mkdir()
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(deep))
    with pytest.raises(FannodeError) as e:
        paths.control_endpoint(str(tmp_path / 'node.yml'))
    assert str(e.value).startswith('the runtime directory %s/fannode is too long' % deep)
    assert 'at most 107 fit' in str(e.value) and '\n' not in str(e.value)
