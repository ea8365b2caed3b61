"""Calling services by name: instances found through discovery, round-robin, retried on
refusal (client), the process's default client behind `fannode.proxy` (default), and the
transport that serves a container's interfaces over fannode RPC (transport)."""
