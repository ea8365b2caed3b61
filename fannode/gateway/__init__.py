"""HTTP/JSON into the cluster: `fannode gateway` serves `Gateway`, a WebInterface that
turns requests into RPC calls and events (docs/gateway.md)."""
from fannode.gateway.interface import Gateway

__all__ = ['Gateway']
