"""Testing services without a cluster: see docs/testing.md.

    def test_greet(fannode_service):
        greeting = fannode_service(Greeting)
        assert greeting.rpc.greet(name='Joe') == 'Hi, Joe!'
        greeting.assert_emitted('greeted', {'name': 'Joe'})

The pytest fixtures `fannode_cluster` and `fannode_service` come with the package (a
pytest plugin); outside pytest use TestCluster / ServiceUnderTest as context managers.
"""
from fannode.testing.cluster import Handled, RecordedCall, TestCluster, wait_until
from fannode.testing.service import ServiceUnderTest

__all__ = ['Handled', 'RecordedCall', 'ServiceUnderTest', 'TestCluster', 'wait_until']
