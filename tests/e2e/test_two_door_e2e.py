"""Two doors in real processes: one Items instance (tests/services/items.py) whose methods
answer curl over HTTP and `fannode request` over RPC, one store behind both."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import free_port, one_line_error

pytestmark = pytest.mark.e2e


@pytest.fixture
def shop(cluster):
    cluster.start_hub()
    cluster.base = 'http://127.0.0.1:%d' % free_port()
    cluster.items = cluster.start_instance('items.yml', env={'WEB_PORT': cluster.base.rsplit(':', 1)[1]})
    return cluster


def http(method: str, url: str, body: str | None = None) -> tuple[int, str]:
    """(status, body) as curl sees them; curl when installed, else urllib."""
    if shutil.which('curl'):
        args = ['curl', '-sS', '-X', method, '-o', '-', '-w', '\n%{http_code}', url]
        if body is not None:
            args += ['-d', body]  # form-encoded, as a quick curl sends it: read as JSON all the same
        out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=True).stdout
        text, _, status = out.rpartition('\n')
        return int(status), text
    import urllib.error
    import urllib.request
    request = urllib.request.Request(url, data=body.encode() if body is not None else None, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_curl_and_fannode_request_reach_one_method(shop):
    status, body = http('POST', shop.base + '/items', '{"name": "pen", "price": 2}')
    assert (status, json.loads(body)) == (201, {'id': 1, 'name': 'pen', 'price': 2})
    made = shop.run('request', 'Items.create', '{"name": "ink"}')
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout) == {'id': 2, 'name': 'ink', 'price': 0}

    status, body = http('GET', shop.base + '/items/2')    # made over RPC, read over HTTP
    assert (status, json.loads(body)) == (200, {'id': 2, 'name': 'ink', 'price': 0})
    status, body = http('PATCH', shop.base + '/items/1', '{"price": 3}')
    assert status == 200 and json.loads(body)['price'] == 3
    got = shop.run('request', 'Items.get', '{"id": 1}')  # changed over HTTP, read over RPC
    assert json.loads(got.stdout) == {'id': 1, 'name': 'pen', 'price': 3}

    deleted = shop.run('request', 'Items.delete', '{"id": 1}')
    assert (deleted.returncode, deleted.stdout) == (0, 'null\n')
    assert http('DELETE', shop.base + '/items/2') == (204, '')
    listed = shop.run('request', 'Items.list')
    assert json.loads(listed.stdout) == []
    assert http('GET', shop.base + '/items') == (200, '[]')


def test_errors_through_both_doors(shop):
    status, body = http('GET', shop.base + '/items/9')
    assert status == 404 and json.loads(body)['error'] == 'no item 9'
    assert 'no item 9' in one_line_error(shop.run('request', 'Items.get', '{"id": 9}'), 1)
    status, body = http('POST', shop.base + '/items', '{"nme": "pen"}')
    assert status == 400
    assert json.loads(body)['error'] == "Items.create: unexpected argument 'nme'; missing argument 'name'"
    assert "unexpected argument 'nme'" in one_line_error(shop.run('request', 'Items.create', '{"nme": "pen"}'), 2)


def test_inspect_shows_both_doors(shop):
    result = shop.run('inspect', 'Items', '--json')
    assert result.returncode == 0, result.stderr
    methods = {m['name']: m for m in json.loads(result.stdout)['methods']}
    assert methods['patch']['http'] == [{'path': '/items/<int:id>', 'methods': ['PATCH'], 'status': 200}]
    human = shop.run('inspect', 'Items')
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    patch = next(i for i, line in enumerate(lines) if line.strip().startswith('Items.patch('))
    assert lines[patch + 1].strip() == 'HTTP PATCH /items/<int:id>'
