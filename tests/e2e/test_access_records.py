"""An HTTP request ships one record, its span carrying its access line (issue 25: the log hub
paid for two per request), and every reader still shows the two: `tail` the line, `tail
--spans` and `trace` the span too, the node's output the line once. Instances run by hand
(records shipped by the instance) and under `fannode up` (written to stderr, forwarded by
the node)."""
from __future__ import annotations

import json
import urllib.request

import pytest

from conftest import free_port, output, wait_until
from test_node import Node, workshop

pytestmark = pytest.mark.e2e


def greet(port: int, name: str, trace_id: str) -> None:
    request = urllib.request.Request('http://127.0.0.1:%d/greet?name=%s' % (port, name),
                                     headers={'X-Trace-Id': trace_id})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.read() == ('Hi, %s!' % name).encode()


def hub_records(url: str, trace_id: str) -> list[dict]:
    """What the hub keeps of a trace, as it keeps it (not as the CLI shows it)."""
    from fannode.hub.client import HubLink
    link = HubLink(url)
    try:
        return link.call('trace', trace_id=trace_id)
    finally:
        link.close()


def access_records(url: str, trace_id: str) -> list[dict]:
    def found():
        mine = [r for r in hub_records(url, trace_id) if r.get('service') == 'Web'
                and (r.get('logger') == 'fannode.web.access' or r.get('type') == 'http')]
        return mine or None
    return wait_until(found, 15, message='the request in the hub')


def check_one_record(records: list[dict], path: str) -> dict:
    assert len(records) == 1, records  # not a span and a line: one record
    record = records[0]
    assert record['kind'] == 'span' and record['type'] == 'http' and record['name'] == 'GET /greet'
    assert record['level'] == 'INFO' and record['logger'] == 'fannode.web.access'
    assert record['msg'].startswith('%s 200 ' % path) and record['msg'].endswith('ms')
    return record


def tail_json(run, *args: str) -> list[dict]:
    result = run('tail', '--no-follow', '--json', '-n', '500', *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def check_readers(run, trace_id: str, path: str, shipped: dict) -> None:
    # tail: the access line, as a log line stamped when the request ended; no span
    lines = [r for r in tail_json(run, '--trace', trace_id) if r.get('logger') == 'fannode.web.access']
    assert [(r['kind'], r['level'], r['msg']) for r in lines] == [('log', 'INFO', shipped['msg'])]
    assert lines[0]['span'] == shipped['span'] and lines[0]['trace'] == trace_id
    assert lines[0]['ts'] == pytest.approx(shipped['ts'] + shipped['duration_ms'] / 1000)
    assert 'duration_ms' not in lines[0]
    # tail --spans: the span, without the line's fields, then the line
    both = [r for r in tail_json(run, '--trace', trace_id, '--spans') if r.get('service') == 'Web'
            and (r.get('logger') == 'fannode.web.access' or r.get('kind') == 'span')]
    assert [r['kind'] for r in both] == ['span', 'log'], both
    assert 'msg' not in both[0] and both[0]['duration_ms'] == shipped['duration_ms'] and both[0]['code'] == 200
    # trace: the request's span, its line beneath it
    result = run('trace', trace_id)
    assert result.returncode == 0, result.stderr
    assert 'http  GET /greet' in result.stdout and path + ' 200' in result.stdout, result.stdout
    assert result.stdout.index('http  GET /greet') < result.stdout.index(path + ' 200')
    result = run('tail', '--no-follow', '--trace', trace_id)
    assert sum(path + ' 200' in line for line in result.stdout.splitlines()) == 1, result.stdout


def test_an_instance_run_by_hand_ships_one_record_per_request(cluster):
    cluster.start_hub()
    port = free_port()
    cluster.start_instance('demo.yml')
    cluster.start_instance('listen.yml')
    web = cluster.start_instance('web.yml', env={'WEB_PORT': str(port)})
    trace_id = 'acce55000000000000000000000000a1'
    greet(port, 'joe', trace_id)
    shipped = check_one_record(access_records(cluster.url, trace_id), 'GET /greet?name=joe')
    check_readers(cluster.run, trace_id, 'GET /greet?name=joe', shipped)
    # its own terminal shows the line as before
    assert '[%s] GET /greet?name=joe 200' % trace_id in output(web)


def test_a_node_forwards_one_record_per_request_and_prints_its_line_once(tmp_path):
    node = Node(tmp_path)
    node.write(workshop(node.hub, node.web_port, greeting=1, listen=1, web=1))
    node.up()
    try:
        node.wait_for('cluster ready', 60)
        trace_id = 'acce55000000000000000000000000b2'
        greet(node.web_port, 'ann', trace_id)
        shipped = check_one_record(access_records(node.hub, trace_id), 'GET /greet?name=ann')
        check_readers(node.cli, trace_id, 'GET /greet?name=ann', shipped)
        node.wait_for('GET /greet?name=ann 200')
        printed = [line for line in node.output().splitlines() if 'GET /greet?name=ann' in line]
        assert len(printed) == 1 and 'fannode.web.access [%s] GET /greet?name=ann 200' % trace_id[:8] in printed[0], \
            printed
    finally:
        node.stop()
