"""Web interfaces in real processes: the walkthrough's Web + Greeting + Listen, errors,
health, graceful stop, and several processes on one port."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, free_port, output, wait_until

pytestmark = pytest.mark.e2e


def get(url: str, headers: dict | None = None, method: str = 'GET', timeout: float = 10):
    """(status, headers, body) of one HTTP request; error statuses are answers too."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


@pytest.fixture
def web(cluster):
    cluster.start_hub()
    cluster.web_port = free_port()
    cluster.greeting = cluster.start_instance('demo.yml')
    cluster.listen = cluster.start_instance('listen.yml')
    cluster.web = cluster.start_instance('web.yml', env={'WEB_PORT': str(cluster.web_port)})
    cluster.base = 'http://127.0.0.1:%d' % cluster.web_port
    return cluster


def test_a_request_flows_through_web_greeting_and_listen_under_one_trace_id(web):
    status, headers, body = get(web.base + '/greet?name=joe')
    assert (status, body) == (200, 'Hi, joe!')
    trace_id = headers['X-Trace-Id']
    assert len(trace_id) == 32
    wait_until(lambda: 'Somebody greeted joe [%s]' % trace_id in output(web.listen),
               message='Listen to print with the same trace id')
    assert 'About to greet joe [%s]' % trace_id in output(web.web)
    assert 'Saying hi to joe' in output(web.greeting)
    # the access log: flushed once the server's loop comes round again, so wait for it
    wait_until(lambda: '[%s] GET /greet?name=joe 200' % trace_id in output(web.web), message='the access line')


def test_an_incoming_trace_id_is_kept(web):
    status, headers, body = get(web.base + '/json/3', {'X-Trace-Id': 'from-the-edge'})
    assert status == 200 and headers['X-Trace-Id'] == 'from-the-edge'
    assert json.loads(body) == {'n': 3, 'trace_id': 'from-the-edge'}
    assert headers['Content-Type'] == 'application/json'


@pytest.mark.parametrize('path, method, status, text', [
    ('/nope', 'GET', 404, 'Not Found'),
    ('/only-post', 'GET', 405, 'Method Not Allowed'),
    ('/boom', 'GET', 500, '"error": "Internal Server Error"'),
    ('/lookup?key=x', 'GET', 502, "Greeting.lookup raised KeyError: 'x'"),
    ('/greet', 'GET', 400, 'Bad Request'),  # request.args['name'] missing
])
def test_errors_map_to_statuses(web, path, method, status, text):
    got, headers, body = get(web.base + path, method=method)
    assert got == status and text in body
    assert headers['X-Trace-Id']
    if status >= 500:
        assert headers['X-Trace-Id'] in body


def test_a_handler_exception_is_logged_with_its_traceback_and_trace_id(web):
    _, headers, _ = get(web.base + '/boom')
    wait_until(lambda: 'RuntimeError: boom' in output(web.web))
    assert '[%s] GET /boom failed' % headers['X-Trace-Id'] in output(web.web)


def test_the_web_endpoint_is_listed_in_discovery(web):
    found = json.loads(web.run('discover', 'Web', '--json').stdout)
    assert found['Web'][0]['meta']['http'] == {'Web': web.base}


def test_health_says_200_while_serving_and_stop_finishes_running_requests(web):
    assert get(web.base + '/_health')[:3:2] == (200, 'ok')
    result = {}
    slow = threading.Thread(target=lambda: result.update(r=get(web.base + '/slow?seconds=1')))
    slow.start()
    wait_until(lambda: 'slow request started' in output(web.web), message='the slow request to run')
    web.web.send_signal(signal.SIGTERM)
    slow.join(timeout=15)
    assert result['r'][0] == 200 and result['r'][2] == 'done'
    assert web.web.wait(timeout=10) == 0
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', web.web_port), timeout=1).close()


def test_two_processes_share_one_port_and_both_serve(cluster):
    cluster.start_hub()
    port = free_port()
    procs = [cluster.start_instance('web.yml', env={'WEB_PORT': str(port)}) for _ in range(2)]
    pids = _pids_seen('http://127.0.0.1:%d/pid' % port, 200)
    assert pids == {p.pid for p in procs}


def test_processes_serve_a_socket_handed_over_by_the_node(cluster, tmp_path):
    """What `fannode up` does: one listening socket, inherited by several instances."""
    cluster.start_hub()
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    config = tmp_path / 'shared.yml'
    config.write_text('interfaces:\n  Web:\n    class: demo:Web\n    socket: web\n')
    procs = []
    for i in range(2):
        log = open(tmp_path / ('shared-%d.log' % i), 'w+')
        proc = subprocess.Popen([*cluster_cmd(), 'instance', '--config', str(config),
                                 '--socket', 'web=%d' % listener.fileno()],
                                env=cluster.env, stdout=log, stderr=subprocess.STDOUT,
                                pass_fds=[listener.fileno()])
        proc.log = log
        cluster.procs.append(proc)
        procs.append(proc)
    listener.close()  # the instances hold it now
    for proc in procs:
        wait_until(lambda: 'over HTTP' in output(proc) or proc.poll() is not None)
        assert proc.poll() is None, output(proc)
    assert _pids_seen('http://127.0.0.1:%d/pid' % port, 200) == {p.pid for p in procs}


def test_a_missing_inherited_socket_is_a_one_line_error(cluster, tmp_path):
    cluster.start_hub()
    config = tmp_path / 'shared.yml'
    config.write_text('interfaces:\n  Web:\n    class: demo:Web\n    socket: web\n')
    result = cluster.run('instance', '--config', str(config), '--socket', 'api=9')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: %s:4: interfaces.Web.socket: no inherited socket 'web' (have: api)" % config)


def test_a_socket_config_run_on_its_own_listens_on_its_port(cluster, tmp_path):
    """conf/web.yml says `socket: web` for the node; `fannode instance` alone uses `port`."""
    cluster.start_hub()
    port = free_port()
    config = tmp_path / 'alone.yml'
    config.write_text('interfaces:\n  Web:\n    class: demo:Web\n    socket: web\n    port: %d\n' % port)
    proc = cluster.spawn('instance', '--config', str(config), name='alone')
    wait_until(lambda: 'serving Web over HTTP' in output(proc), message='the instance to serve')
    assert "listening on port %d instead of socket 'web'" % port in output(proc)
    with urllib.request.urlopen('http://127.0.0.1:%d/_health' % port, timeout=5) as response:
        assert response.status == 200


def test_a_port_in_use_is_a_one_line_error(cluster):
    cluster.start_hub()
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cluster.env['WEB_PORT'] = str(port)
        result = cluster.run('instance', '--config', str(ROOT / 'tests' / 'conf' / 'web.yml'))
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == \
        'error: Web: cannot listen on 127.0.0.1:%d: Address already in use' % port


def cluster_cmd() -> list[str]:
    from conftest import FANNODE
    return FANNODE


def _pids_seen(url: str, n: int) -> set[int]:
    """Make `n` requests, each on a new connection, from 8 threads; all must succeed."""
    pids: list[int] = []
    errors: list[object] = []

    def work(k: int) -> None:
        for _ in range(k):
            status, _, body = get(url)
            (pids.append(int(body)) if status == 200 else errors.append((status, body)))

    threads = [threading.Thread(target=work, args=(n // 8,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(pids) == n // 8 * 8
    return set(pids)
