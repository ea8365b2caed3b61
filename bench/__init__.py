"""The fannode benchmark: `python -m bench` (or `make bench`).

Measures, in one run and side by side, a raw pyzmq REQ/REP round trip (the anchor),
fannode RPC sequential and with 50 calls in flight, and the RSS of an idle instance,
against real processes (a hub and an instance started here). See bench/README.md.
"""
