"""A Procfile's PORTs stay within 1..65535, and its file problems read as .env's do."""
import pytest

from fannode.core.config import MAX_FILE_BYTES
from fannode.exceptions import ConfigError
from fannode.node.topology import load


def write(tmp_path, text):
    path = tmp_path / 'Procfile'
    path.write_text(text)
    return str(path)


def test_ports_past_65535_are_one_line_naming_the_process(tmp_path):
    path = write(tmp_path, 'web: sleep 1\nworker: sleep 1\n')
    assert load(path, env={'PORT': '65435'}).instances['worker'].port == 65535
    with pytest.raises(ConfigError) as info:
        load(path, env={'PORT': '65500'})
    assert str(info.value) == ('%s: $PORT is 65500: worker would get port 65600 (65500 + 100 per line above it), '
                               'past 65535; set a lower $PORT' % path)


def test_a_procfile_too_big_or_not_utf8_is_one_line(tmp_path):
    path = write(tmp_path, 'web: sleep 1\n' + '#' * MAX_FILE_BYTES)
    with pytest.raises(ConfigError, match='larger than %d bytes; is it a Procfile' % MAX_FILE_BYTES):
        load(path, env={})
    (tmp_path / 'Procfile').write_bytes(b'web: sleep 1\nworker: \xff\n')
    with pytest.raises(ConfigError, match=r'Procfile:2: not UTF-8$'):
        load(path, env={})
