"""Sharding with real processes: keyed RPC calls, sharded events, URL shards."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from conftest import Cluster, free_port, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start_hub()
    yield c
    c.stop()


def registered(cluster, service, n):
    wait_until(lambda: cluster.count(service) == n, 20, message='%d instance(s) of %s' % (n, service))


def get(url, method='GET', data=None):
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers, json.loads(response.read())


def test_a_url_shard_is_served_by_its_owner_whichever_instance_the_request_reached(cluster):
    ports = [free_port(), free_port()]
    for port in ports:
        cluster.start_instance('store-web.yml', env={'WEB_PORT': str(port)})
    registered(cluster, 'StoreWeb', 2)
    owners = {}
    for store in range(20):
        seen = set()
        for port in ports:
            headers, body = get('http://127.0.0.1:%d/store/%d/item/3?q=x' % (port, store))
            assert body['served_by'] == headers['X-Shard-Instance']
            assert (body['store'], body['item'], body['q']) == (store, 3, 'x')
            seen.add(body['served_by'])
        assert len(seen) == 1  # both doors lead to one owner
        owners[store] = seen.pop()
    assert len(set(owners.values())) == 2  # and the stores are spread over both
    shard = cluster.run('shard', 'StoreWeb', '7', '--json')
    assert shard.returncode == 0, shard.stderr
    assert json.loads(shard.stdout)[0]['instance']['id'] == owners[7]
    headers, body = get('http://127.0.0.1:%d/store/7/item/1' % ports[0], 'PUT', b'new body')
    assert (body['method'], body['body'], body['served_by']) == ('PUT', 'new body', owners[7])
    for port in ports:  # a header cannot make an instance serve a key it does not own
        request = urllib.request.Request('http://127.0.0.1:%d/store/7/item/1' % port,
                                         headers={'X-Fannode-Forwarded': '1'})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())['served_by'] == owners[7]


EMIT = '''
import sys, fannode
for n in range(int(sys.argv[1])):
    fannode.emit('order.placed', {'store': n % 100, 'n': n})
from fannode.events.default import get_events
assert get_events().flush(30), 'not every event was sent'
'''


def handled(path):
    try:
        return [line.split() for line in path.read_text().splitlines()]
    except FileNotFoundError:
        return []


def test_sharded_events_each_key_by_one_instance_in_emit_order_the_one_rpc_calls_go_to(cluster, tmp_path):
    log = tmp_path / 'orders.log'
    for _ in range(4):
        cluster.start_instance('store.yml', env={'STORE_LOG': str(log)})
    wait_until(lambda: cluster.count('Store') == 4, 20, message='four Store instances')
    emitted = subprocess.run([sys.executable, '-c', EMIT, '5000'], env=cluster.env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert emitted.returncode == 0, emitted.stderr
    wait_until(lambda: len(handled(log)) >= 5000, 60, message='5,000 events handled')
    lines = handled(log)
    assert len(lines) == 5000
    by_key: dict[str, list[tuple[str, int]]] = {}
    for instance, store, n in lines:
        by_key.setdefault(store, []).append((instance, int(n)))
    assert len(by_key) == 100
    for store, seen in by_key.items():
        assert len({i for i, _ in seen}) == 1, store  # one instance per key
        assert [n for _, n in seen] == sorted(n for _, n in seen), store  # in emit order
    assert len({seen[0][0] for seen in by_key.values()}) == 4  # every instance has some keys
    shard = cluster.run('shard', 'Store', *sorted(by_key), '--json')  # the owners RPC calls go to
    assert shard.returncode == 0, shard.stderr
    assert {str(row['key']): row['instance']['id'] for row in json.loads(shard.stdout)} == \
        {store: seen[0][0] for store, seen in by_key.items()}  # events follow them


OWNERS = '''
import json, sys, fannode
store = fannode.proxy('Store', timeout=30)
keys, owners = range(int(sys.argv[1])), {}
for rounds in range(2):  # every key twice: one owner each time
    for start in range(0, len(keys), 500):
        calls = {k: store.owner.defer(store_id=k) for k in keys[start:start + 500]}
        for k, call in calls.items():
            owner = call.get()
            assert owners.setdefault(k, owner) == owner, (k, owners[k], owner)
print(json.dumps(owners))
'''


def owners(cluster, tmp_path, keys=10_000):
    done = subprocess.run([sys.executable, '-c', OWNERS, str(keys)], env=cluster.env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return {int(k): v for k, v in json.loads(done.stdout).items()}


def test_keyed_calls_land_on_one_instance_and_scaling_moves_only_what_it_must(cluster, tmp_path):
    procs = [cluster.start_instance('store.yml', env={'STORE_LOG': str(tmp_path / 'unused')}) for _ in range(4)]
    wait_until(lambda: cluster.count('Store') == 4, 20, message='four Store instances')
    four = owners(cluster, tmp_path)
    assert len(set(four.values())) == 4
    shown = cluster.run('request', 'Store.owner', '{"store_id": 7}', '--json')
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)['reply'] == json.loads(shown.stdout)['instance']['id'] == four[7]
    pinned = subprocess.run([sys.executable, '-c', "import fannode; print(fannode.proxy('Store', shard_key=7)"
                             ".owner(store_id=99))"], env=cluster.env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert pinned.stdout.strip() == four[7], pinned.stderr  # the proxy's key, not the argument's

    procs.append(cluster.start_instance('store.yml', env={'STORE_LOG': str(tmp_path / 'unused')}))
    wait_until(lambda: cluster.count('Store') == 5, 20, message='a fifth Store instance')
    five = owners(cluster, tmp_path)
    new = (set(five.values()) - set(four.values())).pop()
    moved = [k for k in four if four[k] != five[k]]
    assert all(five[k] == new for k in moved)  # only to the new instance
    assert len(moved) / len(four) <= 0.25

    gone = five[0]
    pid = owner_pid(cluster, gone)
    victim = next(p for p in procs if p.pid == pid)
    victim.kill()  # SIGKILL: it leaves discovery when its registration expires
    victim.wait(10)
    wait_until(lambda: cluster.count('Store') == 4, 20, message='the killed instance to leave discovery')
    after = owners(cluster, tmp_path)
    assert {k for k in five if five[k] != after[k]} == {k for k in five if five[k] == gone}


def owner_pid(cluster, instance_id):
    found = json.loads(cluster.run('discover', 'Store', '--json').stdout)['Store']
    return next(i['pid'] for i in found if i['id'] == instance_id)
