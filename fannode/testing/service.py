"""One service under test, with what it calls replaced by mocks."""
from __future__ import annotations

from typing import Any

from fannode.core.interface import Interface
from fannode.testing.cluster import TestCluster


class ServiceUnderTest(TestCluster):
    """`ServiceUnderTest(Greeting, mocks={'Other.method': value_or_callable}, config={...})`.

    `.rpc` calls it over RPC (`greeting.rpc.greet(name='Joe')`), `.interface` is the
    running interface object, `.web()` a test client when it is a WebInterface. A call
    it makes to a service that is neither mocked nor running fails at once with
    UnknownService, naming the service."""

    __test__ = False

    def __init__(self, service: type[Interface], mocks: dict[str, Any] | None = None,
                 config: dict[str, Any] | None = None, timeout: float = 3.0):
        super().__init__(service, mocks=mocks, config={service.__name__: config or {}}, timeout=timeout)
        self.name = service.__name__
        # One service here: `interface` is it, where TestCluster.interface(name) looks one up.
        self.interface = self.interfaces[self.name]  # type: ignore[method-assign, assignment]
        self.rpc = self.proxy(self.name)
