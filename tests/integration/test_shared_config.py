"""Shared config on a real ZooKeeper: the same API as on the hub, znodes under
/prefix/config, DataWatch subscriptions, and the CLI with --registry zookeeper://..."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import gevent
import pytest

from fannode.sharedconfig import get_shared_config
from fannode.testing import wait_until

ROOT = Path(__file__).resolve().parents[2]
FANNODE = [sys.executable, '-m', 'fannode.cli']



@pytest.fixture
def url(zookeeper):
    return '%s/cfg-%s' % (zookeeper.url, uuid.uuid4().hex[:8])  # a prefix of this test's own


@pytest.fixture
def clients(url):
    made = []

    def make():
        made.append(get_shared_config(url))
        return made[-1]
    yield make
    for c in made:
        c.close()


def fannode(url, *args):
    return subprocess.run([*FANNODE, *args, '--registry', url], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, stdin=subprocess.DEVNULL)


def test_set_get_delete_and_keys(clients, url):
    cfg = clients()
    assert cfg.get('greeting.style', 'Hi') == 'Hi'
    assert cfg.keys() == []
    cfg.set('greeting.style', 'Hello')
    cfg.set('greeting.size', {'px': [12, 14]})
    cfg.set('greeting.style', 'Hello again')  # an existing znode: set, not create
    assert cfg.get('greeting.style') == 'Hello again'
    assert clients().get('greeting.size') == {'px': [12, 14]}
    assert cfg.keys() == ['greeting.size', 'greeting.style'] and cfg.keys('greeting.si') == ['greeting.size']
    assert cfg.delete('greeting.size') is True and cfg.delete('greeting.size') is False
    assert cfg.get('greeting.size') is None
    prefix = '/' + url.rsplit('/', 1)[1]
    data, _ = cfg.zk.get(prefix + '/config/greeting.style')
    assert json.loads(data) == 'Hello again'  # one znode per key, JSON, where the docs say


def test_subscribers_hear_of_changes_through_data_watches(clients):
    writer, reader = clients(), clients()
    writer.set('k', 1)
    seen = []
    reader.subscribe('k', lambda key, value: seen.append((key, value)))
    reader.subscribe('absent', lambda key, value: seen.append((key, value)))
    gevent.sleep(0.2)
    assert seen == []  # the value when subscribed is no change
    writer.set('k', 2)
    wait_until(lambda: seen == [('k', 2)], 5, 'the change')
    writer.delete('k')
    wait_until(lambda: seen[-1] == ('k', None), 5, 'the deletion')
    writer.set('absent', 'here')  # a key that did not exist when subscribed
    wait_until(lambda: seen[-1] == ('absent', 'here'), 5, 'the new key')
    writer.set('absent', 'here')  # the same value again: no change
    gevent.sleep(0.3)
    assert seen == [('k', 2), ('k', None), ('absent', 'here')]


def test_the_cli_against_zookeeper(clients, url):
    set_ = fannode(url, 'config', 'set', 'limits.max', '42')
    assert set_.returncode == 0, set_.stderr
    assert clients().get('limits.max') == 42
    clients().set('greeting.style', 'Moin')
    got = fannode(url, 'config', 'get', 'greeting.style')
    assert (got.returncode, got.stdout) == (0, 'Moin\n'), got.stderr
    listed = fannode(url, 'config', 'list', '--json')
    assert json.loads(listed.stdout) == {'greeting.style': 'Moin', 'limits.max': 42}
    missing = fannode(url, 'config', 'get', 'nope')
    assert (missing.returncode, missing.stderr) == (1, "error: no config key 'nope'\n")
