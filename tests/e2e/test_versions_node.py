"""Two versions of one service as two blocks of a node (issue 21 item 2): both serve,
pinned callers reach theirs, unpinned ones the newest, then the route's."""
from __future__ import annotations

import json

import pytest

from conftest import TESTS, wait_until
from test_node import Node

pytestmark = pytest.mark.e2e


def test_two_blocks_at_two_versions_both_serve(tmp_path):
    node = Node(tmp_path)
    config = TESTS / 'conf' / 'demo-versioned.yml'
    node.write(f'''registry: {node.hub}
env: {{PYTHONPATH: {TESTS / 'services'}}}
instances:
  greeting-v1:
    command: fannode instance --config {config}
    env: {{VERSION: 1.0.0}}
    numprocesses: 2
  greeting-v2:
    command: fannode instance --config {config}
    env: {{VERSION: 2.0.0}}
''')
    node.up()
    try:
        node.wait_for('cluster ready', 90)
        wait_until(lambda: node.cli('discover').stdout == 'Greeting [3]  1.0.0 ×2, 2.0.0 ×1\n', 30,
                   message='both blocks registered')
        by_version = {}
        for info in json.loads(node.cli('discover', 'Greeting', '--json').stdout)['Greeting']:
            by_version.setdefault(info['version'], set()).add(info['pid'])

        def replies(subject, n=6):
            return {json.loads(node.cli('request', subject, '--json').stdout)['reply'] for _ in range(n)}
        assert replies('Greeting@1.whoami') <= by_version['1.0.0']
        assert replies('Greeting@^2.whoami', 2) == by_version['2.0.0']
        assert replies('Greeting.whoami', 3) == by_version['2.0.0']  # unpinned: the newest
        assert node.cli('route', 'Greeting', '1').returncode == 0
        assert replies('Greeting.whoami') <= by_version['1.0.0']
        summary = json.loads(node.cli('discover', '--json', '--summary').stdout)['Greeting']
        assert summary['route'] == '1' and summary['current'] == ['1.0.0'] and summary['instances'] == 3
    finally:
        node.stop()
