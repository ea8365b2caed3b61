"""`fannode top`'s mistakes: one line on stderr, a non-zero exit, before any screen."""
from __future__ import annotations

import pytest

from conftest import FANNODE, free_port

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize('args, status, error', [
    (['--interval', '0'], 2, 'error: --interval must be between 0.1 and 60 seconds, got 0'),
    (['--file', 'nope.yml'], 2, 'error: nope.yml: no such file'),
    (['--registry', 'bogus://x'], 2, "error: no registry backend for scheme 'bogus' in 'bogus://x'"),
    (['--registry', 'hub://127.0.0.1:notaport'], 2, "error: bad port in hub URL 'hub://127.0.0.1:notaport'"),
    (['--registry', 'hub://127.0.0.1:{port}'], 3, 'error: cannot reach the hub at hub://127.0.0.1:{port}'),
])
def test_bad_input_and_no_cluster_are_one_line_errors(tmp_path, args, status, error):
    import os
    import subprocess
    port = str(free_port())
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))
    env.pop('FANNODE_REGISTRY', None)
    result = subprocess.run([*FANNODE, 'top', *(a.replace('{port}', port) for a in args)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == status
    assert result.stderr.count('\n') == 1 and result.stderr.startswith(error.replace('{port}', port)), result.stderr
    assert result.stdout == ''
