"""Which RPC client serves the work being done now. The container sets it for each
request and event it handles (so module-level `fannode.proxy(...)` calls go through the
instance's own client and carry its trace), and a web request sets it the same way.
A context variable: several instances in one process (tests) each keep their own."""
from __future__ import annotations

import contextvars
from typing import Any

client: contextvars.ContextVar[Any] = contextvars.ContextVar('fannode_client', default=None)
