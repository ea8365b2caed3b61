"""What the client commands share: reaching the cluster named by --registry."""
from __future__ import annotations

import argparse

from fannode.discovery import Registry


def registry(args: argparse.Namespace) -> Registry:
    from fannode.discovery import get_registry
    from fannode.settings import resolve_url
    return get_registry(resolve_url('registry', args.registry))


def client(args: argparse.Namespace, timeout: float | None = None):  # -> RpcClient
    from fannode.calls.client import RpcClient
    return RpcClient(registry(args), timeout=timeout or 3.0)


def split_subject(subject: str) -> tuple[str, str]:
    from fannode.exceptions import UsageError
    service, _, method = subject.rpartition('.')
    if not service or not method:
        raise UsageError("expected Service.method, got '%s'" % subject)
    return service, method
