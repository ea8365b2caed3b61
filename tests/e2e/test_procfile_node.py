"""A Procfile run by `fannode up` (issue 20, item 4): each line a block, PORT per process
as foreman gives it (base, +100 per line, +1 per extra process), .env loaded, ps and
scale and live edits as for node.yml. Real processes; the ports are probed free first."""
from __future__ import annotations

import json
import random
import socket
import urllib.request

import pytest

from conftest import wait_until
from test_node import Node

pytestmark = pytest.mark.e2e


def free_base(lines: int) -> int:
    """A base port with base + 100*i and the next one free for each line: PORT=base keeps
    the test off the fixed 5000 of foreman's default."""
    for _ in range(200):
        base = random.randrange(20000, 40000)
        ports = [base + 100 * i + j for i in range(lines) for j in (0, 1)]
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(('127.0.0.1', port))
        except OSError:
            continue
        return base
    raise AssertionError('no free port range')


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path)
    n.file = tmp_path / 'Procfile'  # Node.write writes it
    yield n
    n.stop()


def get(port: int) -> int:
    with urllib.request.urlopen('http://127.0.0.1:%d/' % port, timeout=5) as response:
        return response.status


def serves(port: int) -> bool:
    try:
        return get(port) == 200
    except OSError:  # not listening yet
        return False


def ps(node: Node) -> dict[str, dict]:
    result = node.cli('ps', '--json', '-f', 'Procfile')
    assert result.returncode == 0, result.stderr
    return {b['name']: b for b in json.loads(result.stdout)['blocks']}


def test_a_procfile_of_three_lines_is_served_with_a_port_per_process(node):
    base = free_base(4)
    node.env['PORT'] = str(base)
    (node.dir / '.env').write_text('WHO=from-dotenv\n')
    node.write('# a comment, then a blank line\n\n'
               'web: python3 -m http.server $PORT --bind 127.0.0.1\n'
               'api: python3 -m http.server ${PORT} --bind 127.0.0.1\n'
               'printer: sh -c \'echo "printer on $PORT for $WHO"; exec sleep 600\'\n')
    node.up()  # no node.yml in the directory: the Procfile is run
    node.wait_for('cluster ready', 60)
    node.wait_for('printer on', 30)
    assert 'printer on %d for from-dotenv' % (base + 200) in node.output()
    # no ready check: "cluster ready" means started, and http.server listens a moment later
    wait_until(lambda: serves(base) and serves(base + 100), 30, message='web and api to serve')
    blocks = ps(node)
    assert [name for name in blocks if name != 'hub'] == ['web', 'api', 'printer']
    assert all(blocks[n]['state'] == 'ready' for n in ('web', 'api', 'printer'))

    result = node.cli('scale', 'web', '2', '-f', 'Procfile')
    assert result.returncode == 0, result.stderr
    node.wait_for('web.2 started', 30)
    wait_until(lambda: serves(base + 1), 30, message='web.2 serving on PORT %d' % (base + 1))

    after = len(node.output())
    node.write(node.file.read_text() + 'extra: sh -c \'echo "extra on $PORT"; exec sleep 600\'\n')
    node.wait_for('extra on %d' % (base + 300), 30, after=after)  # an edit applies live


def test_a_bad_procfile_line_is_a_one_line_error_with_its_number(node):
    node.write('web: sleep 600\n\nnot a process line\n')
    result = node.cli('up', '--check', '-f', 'Procfile')
    assert (result.returncode, result.stderr.strip()) == (
        2, "error: Procfile:3: expected `name: command`, got 'not a process line'")
    node.write('web: sleep 600\nweb: sleep 1\n')
    result = node.cli('up', '--check')
    assert (result.returncode, result.stderr.strip()) == (2, 'error: Procfile:2: web: already on line 1')
