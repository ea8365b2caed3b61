"""Calling services by name: instances found through discovery, round-robin, retried on
refusal (client), the process's default client behind `fannode.proxy` (default), the
transport that serves a container's interfaces over fannode RPC (transport), the door
through which callers in the same process reach them without a network hop (local), and
a proxy's per-call options (options)."""
