"""The shape of the package that docs/architecture.md draws: one-way layers and no
circles (import-linter, its contracts in setup.cfg), types (mypy), small modules."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def lint_imports(cwd: Path, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath:
        env['PYTHONPATH'] = pythonpath  # before the editable install: this copy of fannode is read
    return subprocess.run([str(BIN / 'lint-imports'), '--config', 'setup.cfg', '--no-cache'], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_layers_hold_and_nothing_goes_in_circles():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'BROKEN' not in result.stdout


def test_an_import_against_the_layers_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / 'fannode', tmp_path / 'fannode', ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(ROOT / 'setup.cfg', tmp_path)
    with open(tmp_path / 'fannode' / 'core' / 'wire.py', 'a') as f:
        f.write('\nfrom fannode.cli import output  # noqa: the kind of import the layers forbid\n')
    result = lint_imports(tmp_path, str(tmp_path))
    assert result.returncode != 0
    assert 'fannode.core is not allowed to import fannode.cli' in result.stdout
    assert 'fannode.core.wire -> fannode.cli.output' in result.stdout


def test_the_package_type_checks():
    result = subprocess.run([sys.executable, '-m', 'mypy', '--config-file', 'setup.cfg'], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert 'Success: no issues found' in result.stdout


def test_no_module_is_over_400_lines():
    big = {str(path.relative_to(ROOT)): lines for path in sorted((ROOT / 'fannode').rglob('*.py'))
           if (lines := len(path.read_text().splitlines())) > 400}
    assert not big, 'split these by concern: %s' % big
