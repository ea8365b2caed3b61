"""Log records and spans, from every process of the cluster to `tail`, `trace` and `top`.

ship.py sends them to a log hub; client.py follows and queries log hubs; the hub side
is fannode/node/hub/logs.py. A record is a dict (see docs/observability.md).
"""
