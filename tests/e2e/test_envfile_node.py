"""Environment files end to end (issue 20, item 3): `.env` beside node.yml, `env_file:`,
`fannode up --env-file`, their precedence, `${VAR}` in node.yml, and `--show-env`.
Real `fannode up` and processes that print what they got."""
from __future__ import annotations

import json

import pytest

from test_node import Node

pytestmark = pytest.mark.e2e

PRINT = '''python3 -c "import os, time; print('got', *(os.environ.get(k, '-') for k in {keys!r}), flush=True); time.sleep(600)"'''


def project(node: Node) -> None:
    (node.dir / '.env').write_text('# for every process\n'
                                   'export GREETING="hello from .env"\n'
                                   'DB_PASSWORD=s3cret\n'
                                   'SHELL_WINS=from-dotenv\n'
                                   "LITERAL='${GREETING}'\n"
                                   'BASE=/srv\nDATA=${BASE}/data\n')
    (node.dir / 'common.env').write_text('LEVEL=from-env-file\nTOP=from-top-env-file\n')
    (node.dir / 'extra.env').write_text('EXTRA=from-flag\n')
    keys = ('GREETING', 'LEVEL', 'TOP', 'EXTRA', 'SHELL_WINS', 'LITERAL', 'DATA')
    node.write(f'''registry: {node.hub}
env_file: common.env
env:
  TOP: from-top-env
instances:
  app:
    command: {PRINT.format(keys=keys)}
    env:
      LEVEL: from-block-env
  echo:
    command: sh -c "echo node.yml sees ${{SHELL_WINS}} and ${{GREETING}}; sleep 600"
''')
    node.env['SHELL_WINS'] = 'from-shell'


def test_env_files_reach_the_processes_in_their_order(node):
    project(node)
    node.up('--env-file', 'extra.env')
    node.wait_for('cluster ready', 60)
    node.wait_for('got ', 30)
    node.wait_for('node.yml sees', 30)
    out = node.output()
    # block env > top env > top env_file > --env-file > .env > the shell (for processes)
    assert 'got hello from .env from-block-env from-top-env from-flag from-dotenv ${GREETING} /srv/data' in out
    # ${VAR} in node.yml: the shell first, as docker compose does, then .env
    assert 'node.yml sees from-shell and hello from .env' in out


def test_show_env_prints_where_each_variable_comes_from_and_hides_secrets(node):
    project(node)
    result = node.cli('up', '--check', '--show-env', 'app', '--env-file', 'extra.env')
    assert result.returncode == 0, result.stderr
    lines = {line.split('=', 1)[0]: line for line in result.stdout.splitlines() if '=' in line and not line.startswith('#')}
    assert lines['DB_PASSWORD'].split('#')[0].strip() == 'DB_PASSWORD="***"'
    assert lines['DB_PASSWORD'].endswith('# .env')
    assert lines['LEVEL'].startswith('LEVEL=from-block-env') and lines['LEVEL'].endswith('# instances.app.env')
    assert lines['TOP'].endswith('# env') and lines['EXTRA'].endswith('# extra.env')
    assert lines['FANNODE_BLOCK'].startswith('FANNODE_BLOCK=app')
    assert lines['FANNODE_LEAVE_GRACE'].startswith('FANNODE_LEAVE_GRACE=0.5')  # as every process gets it

    result = node.cli('up', '--check', '--show-env', 'app', '--json', '--reveal')
    assert result.returncode == 0, result.stderr
    rows = {row['name']: row for row in json.loads(result.stdout)['env']}
    assert rows['DB_PASSWORD'] == {'name': 'DB_PASSWORD', 'value': 's3cret', 'source': '.env', 'redacted': False}
    assert rows['LEVEL']['source'] == 'instances.app.env' and 'EXTRA' not in rows

    result = node.cli('up', '--check', '--show-env', 'nope')
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: --show-env: no block 'nope' in node.yml (blocks: app, echo)")


@pytest.mark.parametrize('text, error', [
    ('A=1\nB="never closed\n', "error: .env:2: cannot read 'B=\"never closed': expected KEY=value (is a quote left open?)"),
    ('A=1\n1X=2\n', "error: .env:2: bad variable name '1X': expected letters, digits, _ . - (not starting with a digit)"),
])
def test_a_bad_env_file_is_a_one_line_error_naming_its_line(node, text, error):
    node.write(f'registry: {node.hub}\ninstances:\n  a: sleep 600\n')
    (node.dir / '.env').write_text(text)
    result = node.cli('up', '--check')
    assert (result.returncode, result.stderr.strip(), result.stdout) == (2, error, '')


def test_a_missing_env_file_names_the_key(node):
    node.write(f'registry: {node.hub}\ninstances:\n  a:\n    command: sleep 600\n    env_file: [nope.env]\n')
    result = node.cli('up', '--check')
    assert result.returncode == 2
    assert result.stderr.strip() == 'error: node.yml:5: instances.a.env_file.0: no such file: %s' % (node.dir / 'nope.env')
    result = node.cli('up', '--check', '--env-file', 'missing.env')
    assert (result.returncode, result.stderr.strip()) == (2, 'error: missing.env: no such file')
