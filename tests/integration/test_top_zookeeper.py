"""`fannode top` on a ZooKeeper + RabbitMQ cluster run by a node it did not start: the
rows from ZooKeeper, `+` through the node, logs from the node's log hub found in
ZooKeeper. Driven with Pilot, as tests/tui does on the hub."""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from fannode.tui.app import TopApp
from fannode.tui.source import TopSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tui'))
from top_helpers import E2ENode, column, greeting_node as node_yml, run, table_rows, until  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture
def node(zookeeper, rabbitmq, tmp_path, monkeypatch):
    """A node (tests/e2e's) running Greeting ×2 on ZooKeeper and RabbitMQ: no hub."""
    url = '%s/top-%s' % (zookeeper.url, uuid.uuid4().hex[:8])
    n = E2ENode(tmp_path)
    n.write(node_yml(url, 2).replace('instances:', 'events: %s\ninstances:' % rabbitmq.url))
    for key in ('FANNODE_REGISTRY', 'FANNODE_EVENTS'):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))  # top finds the node's control socket there
    n.up()
    try:
        n.wait_for('cluster ready', 60)
        yield url, n
    finally:
        n.stop()


def test_top_on_zookeeper_and_rabbitmq(node):
    url, node = node
    source = TopSource(url, str(node.file), 0.5)
    source.start()
    app = TopApp(source)

    async def test(pilot):
        await until(pilot, lambda: 's:Greeting' in table_rows(app) and
                    app.main.table.text('s:Greeting', 'count') == '2/2', message='Greeting 2/2')
        rows = table_rows(app)
        assert [r[4] for k, r in rows.items() if k.startswith('i:Greeting:')] == ['running', 'running']
        assert 'b:hub' in rows and not any('fannode.logs' in k for k in rows)  # the log hub: a node block
        await pilot.press('plus')
        await until(pilot, lambda: node.cli('discover').stdout == 'Greeting [3]\n', timeout=30, message='Greeting [3]')
        await pilot.press('l')
        await until(pilot, lambda: any('serving Greeting' in m for m in column(app.screen.table, 'msg')),
                    message='log lines from the log hub found in ZooKeeper')
        await pilot.press('q')
    try:
        run(app, test)
    finally:
        source.stop()
