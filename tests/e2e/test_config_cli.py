"""Shared config as a user drives it: `fannode config` against a real hub, a service that
follows a key, and hub restarts (kill -9) with the journal."""
from __future__ import annotations

import json
import signal

import pytest

from conftest import one_line_error, output, wait_until

pytestmark = pytest.mark.e2e


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout



def greets(cluster, expected: str) -> bool:
    result = cluster.run('request', 'Styled.greet', '{"name": "Jo"}')
    return result.returncode == 0 and result.stdout == expected + '\n'


def restart_hub(cluster) -> None:
    cluster.hub.send_signal(signal.SIGKILL)
    cluster.hub.wait(timeout=10)
    cluster.start_hub()  # the same journal file


def test_set_get_delete_and_list(cluster):
    cluster.start_hub()
    ok(cluster.run('config', 'set', 'greeting.style', 'Hello'))
    ok(cluster.run('config', 'set', 'limits.max', '42'))
    ok(cluster.run('config', 'set', 'limits.name', '42', '--string'))
    ok(cluster.run('config', 'set', 'greeting.colors', '{"fg": "red", "bg": ["blue"]}'))
    assert ok(cluster.run('config', 'get', 'greeting.style')) == 'Hello\n'
    assert ok(cluster.run('config', 'get', 'greeting.style', '--json')) == '"Hello"\n'
    assert json.loads(ok(cluster.run('config', 'get', 'limits.max', '--json'))) == 42
    assert json.loads(ok(cluster.run('config', 'get', 'limits.name', '--json'))) == '42'
    assert json.loads(ok(cluster.run('config', 'get', 'greeting.colors'))) == {'fg': 'red', 'bg': ['blue']}
    assert ok(cluster.run('config', 'list', 'limits.')) == 'limits.max = 42\nlimits.name = "42"\n'
    assert list(json.loads(ok(cluster.run('config', 'list', '--json')))) == [
        'greeting.colors', 'greeting.style', 'limits.max', 'limits.name']
    ok(cluster.run('config', 'delete', 'limits.max'))
    assert one_line_error(cluster.run('config', 'get', 'limits.max'), 1, stdout='') == "error: no config key 'limits.max'"
    assert one_line_error(cluster.run('config', 'delete', 'limits.max'), 1, stdout='') == "error: no config key 'limits.max'"


def test_mistakes_are_one_line_errors(cluster):
    cluster.start_hub()
    assert one_line_error(cluster.run('config', 'get', 'no such key'), 2, stdout='').startswith(
        "error: bad config key 'no such key': expected dotted words")
    assert 'cannot be null' in one_line_error(cluster.run('config', 'set', 'k', 'null'), 2, stdout='')
    assert one_line_error(cluster.run('config', 'set', 'k'), 2, stdout='') == 'error: usage: fannode config set KEY VALUE'
    assert 'no config keys' in cluster.run('config', 'list').stderr


def test_no_hub_is_a_one_line_error(cluster):
    assert 'cannot reach the hub' in one_line_error(cluster.run('config', 'get', 'k'), 3, stdout='')


def test_a_config_file_still_prints(cluster):
    from conftest import TESTS
    result = cluster.run('config', str(TESTS / 'conf' / 'styled.yml'))
    assert ok(result) == 'interfaces:\n  Styled:\n    class: styled:Styled\n'


def test_watch_prints_changes_live_until_ctrl_c(cluster):
    cluster.start_hub()
    ok(cluster.run('config', 'set', 'greeting.style', 'Hi'))
    watch = cluster.spawn('config', 'watch', 'greeting.style', 'limits.max', name='watch')
    wait_until(lambda: 'watching greeting.style, limits.max' in output(watch), message='the watch to start')
    ok(cluster.run('config', 'set', 'greeting.style', 'Hello'))
    wait_until(lambda: 'greeting.style = "Hello"' in output(watch), message='the change, live')
    ok(cluster.run('config', 'set', 'limits.max', '{"n": 1}'))
    ok(cluster.run('config', 'delete', 'greeting.style'))
    wait_until(lambda: 'greeting.style deleted' in output(watch), message='the deletion')
    watch.send_signal(signal.SIGINT)
    assert watch.wait(timeout=10) == 0
    lines = output(watch).splitlines()
    assert lines[1:] == ['greeting.style = "Hello"', 'limits.max = {"n": 1}', 'greeting.style deleted']


def test_a_service_follows_the_key_the_cli_sets(cluster):
    cluster.start_hub()
    instance = cluster.start_instance('styled.yml')
    assert greets(cluster, 'Hi, Jo!')
    ok(cluster.run('config', 'set', 'greeting.style', 'Moin'))
    wait_until(lambda: 'greeting.style is now Moin' in output(instance), message='the subscription callback')
    assert greets(cluster, 'Moin, Jo!')


def test_a_service_starts_with_the_value_already_set(cluster):
    cluster.start_hub()
    ok(cluster.run('config', 'set', 'greeting.style', 'Servus'))
    cluster.start_instance('styled.yml')
    assert greets(cluster, 'Servus, Jo!')


def test_values_survive_a_hub_restart_with_its_journal(cluster):
    cluster.start_hub()
    ok(cluster.run('config', 'set', 'greeting.style', 'Hello'))
    ok(cluster.run('config', 'set', 'limits.max', '[1, 2]'))
    restart_hub(cluster)
    assert ok(cluster.run('config', 'list', '--json')) == '{"greeting.style": "Hello", "limits.max": [1, 2]}\n'


def test_subscriptions_survive_a_hub_restart(cluster):
    cluster.start_hub()
    ok(cluster.run('config', 'set', 'greeting.style', 'Hello'))
    instance = cluster.start_instance('styled.yml')
    watch = cluster.spawn('config', 'watch', 'greeting.style', name='watch')
    wait_until(lambda: 'watching' in output(watch), message='the watch to start')
    restart_hub(cluster)
    wait_until(lambda: greets(cluster, 'Hello, Jo!'), message='the instance back in the new hub')
    ok(cluster.run('config', 'set', 'greeting.style', 'Moin'))
    wait_until(lambda: greets(cluster, 'Moin, Jo!'), message='the service to follow the change')
    wait_until(lambda: 'greeting.style = "Moin"' in output(watch), message='the watch to see it')
    # The restart itself, with the value kept, was no change to either.
    assert 'is now Hello' not in output(instance)
    assert '"Hello"' not in output(watch)
