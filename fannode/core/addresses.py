"""Which address of this host others can reach us at."""
from __future__ import annotations

import socket
from urllib.parse import urlsplit


def reachable_ip(registry_url: str) -> str:
    """This host's address on the route to the registry: what instances on other
    machines (which reach the registry too) can reach us at."""
    host = urlsplit(registry_url).netloc.split(',')[0].rsplit('@', 1)[-1].rsplit(':', 1)[0] or '127.0.0.1'
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))  # UDP: no packet is sent, the kernel only picks a route
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostbyname(socket.gethostname())


def announced(endpoint: str, ip: str, registry_url: str) -> str:
    """`endpoint` as others should dial it: listening everywhere (0.0.0.0 or *) is no
    address to reach, so name the one on the route to the registry."""
    if ip in ('0.0.0.0', '*'):
        return endpoint.replace('//%s:' % ip, '//%s:' % reachable_ip(registry_url))
    return endpoint
