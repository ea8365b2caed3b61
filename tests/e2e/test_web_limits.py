"""A web instance as a real process against clients that hold connections: at its fd
limit, on stop, and with a url_map naming a method it does not have."""
from __future__ import annotations

import http.client
import resource
import signal
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import FANNODE, TESTS, free_port, output, wait_until

pytestmark = pytest.mark.e2e


def get(port: int, path: str = '/pid', timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start_web(cluster, extra: str = '', files: int | None = None, args: tuple = ()) -> tuple:
    """An instance of demo:Web on a free port, optionally with RLIMIT_NOFILE `files`."""
    port = free_port()
    config = cluster.tmp_path / 'web.yml'
    config.write_text('interfaces:\n  Web:\n    class: demo:Web\n    host: 127.0.0.1\n    port: %d\n%s'
                      % (port, ''.join('    %s\n' % line for line in extra.splitlines())))

    def limit() -> None:
        if files:
            resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    log = open(cluster.tmp_path / 'web.log', 'w+')
    proc = subprocess.Popen([*FANNODE, 'instance', '--config', str(config), *args], env=cluster.env,
                            cwd=cluster.tmp_path, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=limit)
    proc.log = log
    cluster.procs.append(proc)
    wait_until(lambda: 'serving Web over HTTP' in output(proc) or proc.poll() is not None,
               message='the instance to serve')
    assert proc.poll() is None, output(proc)
    return proc, port


def test_idle_connections_past_the_fd_limit_get_503_then_time_out(cluster):
    """The report: 1,100 idle connections and nofile 1,024, and every request timed out."""
    cluster.start_hub()
    proc, port = start_web(cluster, 'header_timeout: 3', files=256)
    idle = [socket.create_connection(('127.0.0.1', port)) for _ in range(300)]
    try:
        status, body = get(port)
        assert (status, body) == (503, 'too many connections; try again\n')
        for sock in idle:  # each is answered (408 or 503) and closed, none held for good
            sock.settimeout(10)
            assert sock.recv(65536).startswith(b'HTTP/1.1 ')
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: get(port) == (200, str(proc.pid)), message='the instance to serve again')
    assert proc.poll() is None and 'Traceback' not in output(proc)
    assert 'Web: serving at most 128 connections at once, not 1000' in output(proc)


def test_stop_closes_idle_connections_and_does_not_wait_out_the_stop_timeout(cluster):
    cluster.start_hub()
    proc, port = start_web(cluster, args=('--stop-timeout', '60'))
    idle = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    idle.request('GET', '/pid')
    assert idle.getresponse().read() == str(proc.pid).encode()  # kept alive, now idle
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert idle.sock.recv(100) == b''
    idle.close()


def test_a_request_that_never_ends_does_not_hold_the_instance_past_its_stop_timeout(cluster):
    cluster.start_hub()
    proc, port = start_web(cluster, args=('--stop-timeout', '1'))
    stuck = socket.create_connection(('127.0.0.1', port))
    stuck.sendall(b'GET /slow?seconds=86400 HTTP/1.1\r\nHost: x\r\n\r\n')
    wait_until(lambda: 'slow request started' in output(proc), message='the request to run')
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    stuck.settimeout(10)
    with stuck:
        answer = http.client.HTTPResponse(stuck)
        answer.begin()
        assert (answer.status, answer.read()) == (503, b'the service stopped before answering\n')
        assert stuck.recv(100) == b''


BROKEN = '''
import fannode
from werkzeug.routing import Map, Rule


class Web(fannode.WebInterface):
    url_map = Map([Rule('/ok', endpoint='ok'), Rule('/typo', endpoint='hellp')])

    def ok(self, request):
        return 'ok'
'''


def test_a_url_map_naming_a_missing_method_stops_the_instance_with_one_line(cluster):
    cluster.start_hub()
    (cluster.tmp_path / 'broken.py').write_text(BROKEN)
    config = cluster.tmp_path / 'broken.yml'
    config.write_text('interfaces:\n  Web:\n    class: broken:Web\n    port: %d\n' % free_port())
    result = cluster.run('instance', '--config', str(config))
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: %s:3: interfaces.Web.class: url_map rule '/typo' names endpoint 'hellp', but Web has "
        "no such method" % config)


def test_conf_web_yml_still_serves(cluster):
    cluster.start_hub()
    port = free_port()
    proc = cluster.start_instance('web.yml', env={'WEB_PORT': str(port)})
    assert get(port) == (200, str(proc.pid))
    assert (TESTS / 'conf' / 'web.yml').exists()
