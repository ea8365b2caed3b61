"""The pytest plugin (entry point `pytest11`): fixtures that start services for a test
and stop them after it."""
from __future__ import annotations

import pytest


@pytest.fixture
def fannode_cluster():
    """`cluster = fannode_cluster(Greeting, Listen, mocks={...}, config={...})`."""
    from fannode.testing import TestCluster
    started = []

    def start(*services, **kwargs):
        cluster = TestCluster(*services, **kwargs)
        started.append(cluster)
        return cluster
    yield start
    for cluster in reversed(started):
        cluster.stop()


@pytest.fixture
def fannode_service():
    """`greeting = fannode_service(Greeting, mocks={'Other.method': value}, config={...})`."""
    from fannode.testing import ServiceUnderTest
    started = []

    def start(service, **kwargs):
        svc = ServiceUnderTest(service, **kwargs)
        started.append(svc)
        return svc
    yield start
    for svc in reversed(started):
        svc.stop()
