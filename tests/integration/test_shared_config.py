"""Shared config on a real ZooKeeper: znodes under /prefix/config, and the CLI with
--registry zookeeper://... The API every backend keeps is checked on ZooKeeper too, by
tests/contracts/test_shared_config_contract.py."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from fannode.sharedconfig import get_shared_config

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


def test_one_znode_per_key_holding_json_where_the_docs_say(clients, url):
    cfg = clients()
    cfg.set('greeting.style', 'Hello')
    cfg.set('greeting.style', 'Hello again')  # an existing znode: set, not create
    path = '/%s/config/greeting.style' % url.rsplit('/', 1)[1]
    data, _ = cfg.zk.get(path)
    assert json.loads(data) == 'Hello again'
    cfg.zk.set(path, b'set by hand')  # with zkCli, say: not JSON, so taken as text
    assert clients().get('greeting.style') == 'set by hand'


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
