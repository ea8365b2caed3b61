"""`fannode instance --reload`: run the instance as a child process and run it again
when its Python sources change (watchfiles' sync API, from this plain process; the
child is the instance, with gevent and everything, as without --reload)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

CHILD = 'FANNODE_RELOAD_CHILD'  # set in the child: it runs the instance, not another watcher
DEBOUNCE_MS = 300
RUST_TIMEOUT_MS = 500  # how often the watch looks whether it should stop


def source_dirs(config: Any) -> list[str]:
    """Where the interfaces the config names come from: the directory of each top-level
    module or package (`greeting:Greeting` → the directory holding greeting.py,
    `shop.orders:Orders` → shop/). Found without importing them."""
    import importlib.util
    dirs = []
    interfaces = config.get('interfaces') or {}
    for name in interfaces:
        entry = interfaces.get(name)
        spec: Any = entry
        if entry is not None and not isinstance(entry, str) and hasattr(entry, 'get'):
            spec = entry.get('class')  # {class: module:Class, ...}
        if not isinstance(spec, str) or ':' not in spec:
            continue
        top = spec.split(':', 1)[0].split('.')[0]
        try:
            found = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        if found is None or not found.origin or found.origin in ('built-in', 'frozen'):
            continue
        locations = list(found.submodule_search_locations or [])  # a package: its directory
        dirs.extend(locations or [os.path.dirname(found.origin)])
    return list(dict.fromkeys(os.path.abspath(d) for d in dirs))


def run(config: Any, label: str, stop_timeout: float) -> int:
    """Run `fannode <the same arguments>` until SIGINT/SIGTERM, again after each change."""
    from watchfiles import watch

    from fannode.cli import output
    from fannode.exceptions import UsageError
    from fannode.node.reloadkey import listed
    sys.path.insert(0, os.getcwd())  # as the instance has it: its modules are found the same way
    dirs = source_dirs(config)
    if not dirs:
        raise UsageError('--reload: cannot find where the interfaces of %s come from (none importable)' % label)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    python_only = _PythonOnly()
    child = _start()
    said = False  # that the child exited by itself
    try:
        for changes in watch(*dirs, watch_filter=python_only, step=DEBOUNCE_MS, stop_event=stop,
                             rust_timeout=RUST_TIMEOUT_MS, yield_on_timeout=True, raise_interrupt=False):
            if not changes:  # a look every RUST_TIMEOUT_MS: did it crash (a syntax error)?
                if child.poll() is not None and not said and not stop.is_set():
                    output.err.print('%s: exited with status %d; started again when a file changes'
                                     % (label, child.returncode), markup=False, highlight=False)
                    said = True
                continue
            said = False
            files = sorted({os.path.relpath(path) for _, path in changes})
            output.err.print('%s: reloading (%s changed)' % (label, listed(files)), markup=False, highlight=False)
            _stop(child, stop_timeout)
            child = _start()
    finally:
        _stop(child, stop_timeout)
    return 0


class _PythonOnly:
    """watchfiles' defaults (no __pycache__, .git, editor swap files...) and *.py only."""

    def __init__(self) -> None:
        from watchfiles import DefaultFilter
        self.default = DefaultFilter()

    def __call__(self, change: Any, path: str) -> bool:
        return path.endswith('.py') and self.default(change, path)


def _start() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, '-m', 'fannode.cli', *sys.argv[1:]], env=dict(os.environ, **{CHILD: '1'}))


def _stop(child: subprocess.Popen[bytes], timeout: float) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)  # it leaves discovery and finishes its requests
        try:
            child.wait(timeout + 5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
