"""fannode's RPC frames (core.wire) over ZeroMQ, on the gevent loop: one DEALER connection
to one endpoint and the calls waiting on it (connection), the ROUTER side that serves
requests (server), and calls to one given instance (direct). Nothing here knows about
discovery: fannode.calls finds instances, fannode.hub speaks to the hub over these."""
