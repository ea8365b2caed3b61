"""`fannode route` on ZooKeeper: the route kept as a znode under the cluster's prefix, a
running client following it within a second through its DataWatch (route_scenario.py)."""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'e2e'))
from route_scenario import route_walkthrough  # noqa: E402

pytestmark = pytest.mark.e2e


def test_route_switches_unpinned_calls_on_zookeeper(zookeeper, cluster):
    cluster.url = '%s/route-%s' % (zookeeper.url, uuid.uuid4().hex[:8])
    cluster.env['FANNODE_REGISTRY'] = cluster.url
    figures = route_walkthrough(cluster)
    print('switch after fannode route on ZooKeeper: %s' % ', '.join('%s %.2fs' % kv for kv in figures.items()))
