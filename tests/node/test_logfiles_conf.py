"""node.yml `logs:` and `metrics:` as read, and the rotating writer on its own."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from fannode.exceptions import ConfigError
from fannode.node import topology
from fannode.node.logconf import LogSpec
from fannode.node.logfiles import LogFiles, RotatingFile
from fannode.node.metricsconf import MetricsSpec


def load(tmp_path, text: str) -> topology.Topology:
    return topology.loads('registry: hub://127.0.0.1:4999\n' + text, base_dir=str(tmp_path))


def error(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    assert '\n' not in str(e.value)
    return str(e.value)


def test_top_level_logs_reach_every_block_and_a_block_overrides_key_by_key_or_turns_them_off(tmp_path):
    t = load(tmp_path, '''logs: {dir: out, max_size: 1MB, backups: 3}
instances:
  a: sleep 1
  b: {command: sleep 1, logs: {max_size: 512KiB}}
  c: {command: sleep 1, logs: false}
''')
    out = str(tmp_path / 'out')
    assert t.logs == LogSpec(out, 1024 * 1024, 3)
    assert t.instances['a'].logs == LogSpec(out, 1024 * 1024, 3)
    assert t.instances['b'].logs == LogSpec(out, 512 * 1024, 3)
    assert t.instances['c'].logs is None


def test_without_a_top_level_logs_only_the_blocks_that_ask_write_files_with_the_defaults(tmp_path):
    t = load(tmp_path, 'instances:\n  a: sleep 1\n  b: {command: sleep 1, logs: true}\n')
    assert t.logs is None and t.instances['a'].logs is None
    assert t.instances['b'].logs == LogSpec(str(tmp_path / 'logs'), 10 * 1024 * 1024, 5)


@pytest.mark.parametrize('text, expected', [
    ('logs: {max_size: lots}\n', "node.yml:2: logs.max_size: expected a size like 10MB, 512KB or a number of "
                                 "bytes, got 'lots'"),
    ('logs: {max_size: 100}\n', 'node.yml:2: logs.max_size: expected at least 1KB, got 100 bytes'),
    ('logs: {backups: -1}\n', 'node.yml:2: logs.backups: expected a whole number 0..100, got -1'),
    ('logs: {bogus: 1}\n', "node.yml:2: logs: unknown key 'bogus' (expected one of: backups, dir, max_size)"),
    ('logs: 3\n', 'node.yml:2: logs: expected'),
    ('metrics: {port: 70000}\n', 'node.yml:2: metrics.port: expected a port 0..65535, got 70000'),
    ('metrics: {interval: 0}\n', 'node.yml:2: metrics.interval: expected seconds 0.1..3600, got 0.0'),
])
def test_a_bad_logs_or_metrics_value_is_one_line_naming_the_line_and_key(tmp_path, text, expected):
    assert error(tmp_path, text + 'instances: {a: sleep 1}\n').startswith(expected)


def test_a_log_dir_under_a_file_is_refused_when_node_yml_is_read(tmp_path):
    (tmp_path / 'afile').write_text('')
    message = error(tmp_path, 'instances:\n  a: {command: sleep 1, logs: {dir: afile/x}}\n')
    assert message.startswith('node.yml:3: instances.a.logs.dir: cannot make the directory %s: %s is not a '
                              'directory' % (tmp_path / 'afile' / 'x', tmp_path / 'afile')), message


def test_metrics_defaults_and_none_without_the_key(tmp_path):
    assert load(tmp_path, 'instances: {}\n').metrics is None
    assert load(tmp_path, 'metrics: true\ninstances: {}\n').metrics == MetricsSpec('127.0.0.1', 9464, 5.0)
    assert load(tmp_path, 'metrics: {port: 0, host: 0.0.0.0}\ninstances: {}\n').metrics == MetricsSpec('0.0.0.0', 0)


def test_the_writer_rotates_past_max_size_keeping_n_backups_and_drops_the_oldest(tmp_path):
    path = str(tmp_path / 'logs' / 'a.log')
    file = RotatingFile(path, LogSpec(str(tmp_path / 'logs'), 1024, 2), warn=pytest.fail)
    for i in range(100):
        file.write(b'%04d %s\n' % (i, b'x' * 94))  # 100 bytes: 10 a file
    file.close()
    assert sorted(os.listdir(tmp_path / 'logs')) == ['a.log', 'a.log.1', 'a.log.2']
    text = [(tmp_path / 'logs' / ('a.log' + suffix)).read_bytes() for suffix in ('.2', '.1', '')]
    assert [len(t) for t in text] == [1000, 1000, 1000]
    assert text[2].splitlines()[-1].startswith(b'0099') and text[0].startswith(b'0070')


def test_a_full_disk_is_one_warning_and_no_exception_and_writing_resumes_after(tmp_path):
    if not os.path.exists('/dev/full'):
        pytest.skip('no /dev/full')
    os.symlink('/dev/full', tmp_path / 'a.log')
    warnings: list[str] = []
    files = LogFiles(warnings.append)
    spec = LogSpec(str(tmp_path), 10 * 1024 * 1024, 2)
    for i in range(3):  # no loop here: each line is flushed at once
        files.write(spec, 'a', 1, 'line %d' % i)
    assert len(warnings) == 1 and warnings[0] == ('cannot write %s: No space left on device; its lines are '
                                                  'dropped until it can' % (tmp_path / 'a.log')), warnings
    os.unlink(tmp_path / 'a.log')
    files.write(spec, 'a', 1, 'back')
    files.close()
    assert (tmp_path / 'a.log').read_text().endswith(' a.1 │ back\n')


def test_a_logs_edit_is_applied_in_place_and_a_metrics_edit_is_reported_not_applied(tmp_path):
    from fannode.node import changes
    old = load(tmp_path, 'instances:\n  a: sleep 1\n')
    new = load(tmp_path, 'logs: {dir: out}\nmetrics: {port: 9100}\ninstances:\n  a: sleep 1\n')
    diff = changes.diff(old, new)
    assert diff.describe() == ['a: updated (logs changed)'] and not diff.restarted
    assert diff.node == ['metrics changed: off → 127.0.0.1:9100 every 5s']


def test_the_next_line_after_a_logs_edit_goes_where_the_new_settings_say(tmp_path):
    files = LogFiles(pytest.fail)
    files.write(LogSpec(str(tmp_path / 'one')), 'a', 1, 'before')
    files.write(LogSpec(str(tmp_path / 'two')), 'a', 2, 'after')
    files.close()
    assert (tmp_path / 'one' / 'a.log').read_text().endswith(' a.1 │ before\n')
    assert (tmp_path / 'two' / 'a.log').read_text().endswith(' a.2 │ after\n')


def test_a_removed_log_file_is_made_again_and_rotation_past_it_does_not_fail(tmp_path):
    files = LogFiles(pytest.fail)  # no warning either
    spec = LogSpec(str(tmp_path), 1024, 2)
    files.write(spec, 'a', 1, 'one')
    os.unlink(tmp_path / 'a.log')  # `rm logs/a.log`
    files.write(spec, 'a', 1, 'two')
    assert (tmp_path / 'a.log').read_text().endswith(' a.1 │ two\n')
    os.rename(tmp_path / 'a.log', tmp_path / 'a.log.old')  # logrotate's way
    files.write(spec, 'a', 1, 'three')
    files.close()
    assert (tmp_path / 'a.log').read_text().endswith(' a.1 │ three\n')

    file = RotatingFile(str(tmp_path / 'b.log'), spec, warn=pytest.fail)
    file.write(b'x' * 1000)
    file.flush()
    os.unlink(tmp_path / 'b.log')  # gone just before it reaches max_size
    for _ in range(3):
        file.write(b'y' * 100)  # rotates: nothing to move, and writing goes on
    file.close()
    assert (tmp_path / 'b.log').read_bytes() == b'y' * 300 and file.size == 300


def test_old_and_new_logs_settings_during_a_rollout_share_one_open_file(tmp_path):
    files = LogFiles(pytest.fail)
    old, new = LogSpec(str(tmp_path), 1 << 20, 2), LogSpec(str(tmp_path), 2 << 20, 3)
    files.write(old, 'a', 1, 'old')
    opened = files.files[str(tmp_path / 'a.log')].file
    files.write(new, 'a', 1, 'new')
    files.write(old, 'a', 2, 'old again')
    assert files.files[str(tmp_path / 'a.log')].file is opened  # not closed and reopened line by line
    files.close()
    assert (tmp_path / 'a.log').read_text().count('\n') == 3


def test_a_metrics_edit_is_said_at_every_save_until_the_node_restarts(tmp_path):
    import asyncio
    import io

    from rich.console import Console

    from fannode.node import edits
    from fannode.node.output import Printer
    path = tmp_path / 'node.yml'
    path.write_text('instances:\n  a: sleep 1\n')
    out = io.StringIO()
    node = SimpleNamespace(topology=topology.load(str(path)), blocks={'a': SimpleNamespace(spec=None)},
                           printer=Printer(console=Console(file=out, width=300)))
    for logs in ('true', '{backups: 2}'):  # each save applies a block's change too
        path.write_text('metrics: {port: 9100}\nlogs: %s\ninstances:\n  a: sleep 1\n' % logs)
        asyncio.run(edits.reload(node))
    said = [line for line in out.getvalue().splitlines() if 'metrics changed' in line]
    assert len(said) == 2 and node.topology.metrics is None, out.getvalue()  # still the one it runs
    assert node.blocks['a'].spec.logs.backups == 2
