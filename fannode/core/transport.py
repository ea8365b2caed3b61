"""The seam between an instance and the protocols its interfaces are served over.

An Interface names the transports it needs (`Interface.transports`: every one has
'rpc', a WebInterface adds 'http'); the container loads each by that name from the
`fannode.transports` entry point group, the way registries and event brokers are loaded
by URL scheme, so it never imports a transport itself.

Lifecycle, called by the container: `start()` binds and serves, and returns what goes
into the instance's registration (the 'rpc' transport gives 'endpoint'); `stop(timeout)`
refuses new work and waits for running work (False if some was still running at the
deadline); `close()` releases everything. A transport that can also call other services
offers its client through `client()`; the container takes the 'rpc' transport's.
"""
from __future__ import annotations

import abc
from typing import Any, Callable, Protocol

from fannode.core.config import Config
from fannode.core.metrics import Metrics
from fannode.core.plugins import Plugins


class Host(Protocol):
    """What a transport uses of the container that runs it."""

    config: Config
    interfaces: dict[str, Any]
    sockets: dict[str, int]
    metrics: Metrics
    plugins: Plugins
    ip: str | None               # where to listen, when given on the command line
    port: int | None
    registry: Any                # the instance's fannode.discovery.Registry

    def dispatch(self, subject: str, body: Any) -> Callable[[], Any]:
        """The call that answers `subject` ('Service.method') with `body`; raises a Nack
        at once when it cannot be run."""

    def is_builtin(self, subject: str) -> bool: ...

    def is_expected(self, exc: BaseException, subject: str) -> bool: ...


class Transport(abc.ABC):
    name = ''
    config_key = ''  # its section of the service config, if it has one ('rpc')

    def __init__(self, host: Host):
        self.host = host

    @abc.abstractmethod
    def start(self) -> dict[str, Any]:
        """Bind and serve; what to announce in the instance's registration."""

    def stop(self, timeout: float) -> bool:
        return True

    def close(self) -> None:
        pass

    def in_flight(self) -> int:
        return 0

    def client(self) -> Any:
        """A client for calling services, if this transport can call (the rpc one does)."""
        return None
