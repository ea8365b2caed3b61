"""Shared config: key/value settings kept by the cluster's registry backend, chosen by
the registry URL's scheme (entry point group `fannode.config`)."""
from __future__ import annotations

from fannode.backends import load_backend
from fannode.sharedconfig.base import SharedConfig, check_key

__all__ = ['SharedConfig', 'check_key', 'get_shared_config']


def get_shared_config(url: str) -> SharedConfig:
    return load_backend('fannode.config', url)(url)
