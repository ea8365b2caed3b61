"""The 'http' transport: every WebInterface of an instance served over HTTP, each on its
own port or on a listening socket the node hands over (fannode.web.server)."""
from __future__ import annotations

import logging
from typing import Any

from fannode.core.transport import Host, Transport
from fannode.web.interface import WebInterface
from fannode.web.server import WebServer

log = logging.getLogger(__name__)


class HttpTransport(Transport):
    name = 'http'

    def __init__(self, host: Host):
        super().__init__(host)
        self.servers: list[WebServer] = []

    def start(self) -> dict[str, Any]:
        urls = {}
        for iface in self.host.interfaces.values():
            if isinstance(iface, WebInterface):
                server = WebServer(iface, self.host.sockets)
                server.start()
                self.servers.append(server)
                urls[iface.name] = server.url
                log.info('serving %s over HTTP at %s', iface.name, server.url)
        return {'http': urls}

    def stop(self, timeout: float) -> bool:
        """Health checks say 503 at once; running requests get `timeout` to finish."""
        for server in self.servers:
            server.stop(timeout)
        return True
