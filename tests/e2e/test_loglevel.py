"""`fannode change-loglevel` on running instances: DEBUG lines appear in each
instance's output, and go again when --period is over."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import free_port, one_line_error, output, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def chatty(cluster):
    """A hub and two Chatty instances; each one logs what `chatty.say` events say."""
    cluster.start_hub()
    cluster.instances = [cluster.start_instance('chatty.yml'), cluster.start_instance('chatty.yml')]
    wait_until(lambda: cluster.count('Chatty') == 2, message='two instances registered')
    return cluster


def say(cluster, text):
    """Every instance logs 'info: TEXT', and 'debug: TEXT' too when at DEBUG."""
    assert cluster.run('emit', 'chatty.say', json.dumps({'text': text})).returncode == 0
    wait_until(lambda: all('info: %s' % text in output(p) for p in cluster.instances),
               message='every instance to log %s' % text)
    return ['debug: %s' % text in output(p) for p in cluster.instances]


def test_debug_lines_appear_on_every_instance_and_go_after_the_period(chatty):
    assert say(chatty, 'before') == [False, False]
    result = chatty.run('change-loglevel', 'Chatty', 'debug', '--period', '3')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for proc in chatty.instances:
        [line] = [l for l in lines if 'pid %d ' % proc.pid in l]
        assert line.endswith('root: INFO → DEBUG  (back in 3s)')
    assert say(chatty, 'during') == [True, True]
    wait_until(lambda: all('log level of root back to INFO' in output(p) for p in chatty.instances),
               timeout=10, message='the level to revert')
    assert say(chatty, 'after') == [False, False]


def test_one_logger_only_and_json(chatty):
    result = chatty.run('change-loglevel', 'Chatty', 'DEBUG', '--logger', 'chatty', '--json')
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r['pid'] for r in replies} == {p.pid for p in chatty.instances}
    assert all((r['logger'], r['old'], r['new'], r['period']) == ('chatty', 'NOTSET', 'DEBUG', None)
               for r in replies)
    assert say(chatty, 'chatty only') == [True, True]
    back = chatty.run('change-loglevel', 'Chatty', 'WARNING', '--logger', 'chatty')
    assert back.returncode == 0 and back.stdout.count('chatty: DEBUG → WARNING') == 2


def test_mistakes_are_one_line(chatty):
    for args, code, message in [
        (['Nope', 'DEBUG'], 3, "error: no instance of service 'Nope' is registered (services: Chatty)"),
        (['Chatty', 'LOUD'], 2, "error: unknown log level 'LOUD' (expected one of DEBUG, INFO, WARNING, "
                                "ERROR, CRITICAL)"),
        (['Chatty', 'DEBUG', '--period', '0'], 2,
         'error: period must be a positive number of seconds up to 604800 (a week), got 0.0'),
        (['Chatty', 'DEBUG', '--logger', 'x' * 201], 2,
         'error: logger name too long: 201 characters (at most 200)'),
    ]:
        assert one_line_error(chatty.run('change-loglevel', *args), code) == message


def test_a_logger_the_instances_do_not_have_is_refused_by_each(chatty):
    result = chatty.run('change-loglevel', 'Chatty', 'DEBUG', '--logger', 'no.such.logger')
    assert result.returncode == 1 and result.stdout == '' and 'Traceback' not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert sorted(int(line.split()[2]) for line in lines) == sorted(p.pid for p in chatty.instances)
    for line in lines:
        assert line.endswith("error: no logger named 'no.such.logger' in this "
                             "process (loggers exist once code logs through them, e.g. 'fannode' or "
                             "the services' modules)"), line


# Registered, heartbeating, but nothing listens at its endpoint.
DEAD = """
import sys, gevent
from fannode.discovery import InstanceInfo, get_registry
registry = get_registry(sys.argv[1])
registry.register(InstanceInfo(id='dead%028d' % 0, endpoint='tcp://127.0.0.1:' + sys.argv[2],
                               services=['Chatty'], pid=1, host='nowhere'))
gevent.sleep(600)
"""


def test_an_instance_that_does_not_answer_is_reported(chatty):
    dead = subprocess.Popen([sys.executable, '-c', DEAD, chatty.url, str(free_port())], env=chatty.env)
    try:
        wait_until(lambda: chatty.count('Chatty') == 3, message='the dead instance registered')
        result = chatty.run('change-loglevel', 'Chatty', 'DEBUG', '--timeout', '0.5')
    finally:
        dead.kill()
        dead.wait(timeout=10)
    assert result.returncode == 1
    for proc in chatty.instances:
        assert 'pid %d  root: INFO → DEBUG' % proc.pid in result.stdout
    assert one_line_error(result, 1).startswith('dead0000  pid 1  error: Chatty.change_loglevel: '
                                                'cannot connect to tcp://127.0.0.1:')
