"""A CLI command: one module each, found through the `fannode.commands` entry points.

Command modules import only the standard library at the top; what they need to do
their work is imported inside `run`, so `fannode --help` stays fast and one command's
gevent monkey-patching never reaches another.
"""
from __future__ import annotations

import argparse


class Command:
    name = ''
    help = ''          # one line, for `fannode list`
    uses_cluster = True  # takes --registry
    uses_events = False  # takes --events too (commands that emit or consume events)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


def json_body(text: str, what: str = 'body') -> object:
    """Parse JSON given on the command line ('-' reads stdin) with a one-line error."""
    import json
    import sys

    from fannode.exceptions import UsageError
    if text == '-':
        text = sys.stdin.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError('bad JSON %s: %s' % (what, e)) from None


def patch_gevent() -> None:
    """gevent.monkey.patch_all(), ~100 ms sooner: gevent looks up its plugin entry points
    once per module it patches (25 times), and each lookup reads the metadata of every
    installed package. Here they are read once. Every instance starts this way."""
    from importlib import metadata

    from gevent import monkey
    if monkey.is_anything_patched():  # a preloaded worker: its template did it
        return
    original = metadata.entry_points
    everything = original()
    metadata.entry_points = lambda **select: everything.select(**select) if select else everything  # type: ignore[assignment]
    try:
        monkey.patch_all()
    finally:
        metadata.entry_points = original
