"""Plugins in `fannode instance` processes: from an installed package's entry points,
from the config file, and the Sentry plugin sending to a (local, fake) Sentry."""
from __future__ import annotations

import gzip
import http.server
import json
import signal
import threading

import pytest

from conftest import one_line_error, output, wait_until

pytestmark = pytest.mark.e2e


def hooks(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_entry_point_plugins_load_in_every_instance_and_a_broken_one_is_skipped(cluster, tmp_path):
    # An installed distribution, as pip leaves it: a dist-info with entry_points.txt.
    dist = tmp_path / 'site' / 'fannode_test_plugins-0.1.dist-info'
    dist.mkdir(parents=True)
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: fannode-test-plugins\nVersion: 0.1\n')
    (dist / 'entry_points.txt').write_text('[fannode.plugins]\nrecorder = plugged:FilePlugin\n'
                                           'broken = no_such_module:Plugin\n')
    log = tmp_path / 'plugin.jsonl'
    env = {'PLUGIN_LOG': str(log),
           'PYTHONPATH': '%s:%s' % (tmp_path / 'site', cluster.env['PYTHONPATH'])}
    cluster.start_hub()
    proc = cluster.start_instance(env=env)
    assert "plugin 'broken' (entry point no_such_module:Plugin) cannot load" in output(proc)
    seen = hooks(log)
    assert [h['hook'] for h in seen] == ['on_interface_installation', 'on_start']
    assert seen[0]['interface'] == 'Greeting'
    instance = json.loads(cluster.run('discover', '--json').stdout)['Greeting'][0]['id']
    assert seen[1]['instance'] == instance

    failed = cluster.run('request', 'Greeting.fail', '--trace-id', 'trace-ep-1')
    assert failed.returncode == 1
    assert cluster.run('request', 'Greeting.greet', '{"name": "Joe"}').stdout == 'Hi, Joe!\n'
    error = wait_until(lambda: [h for h in hooks(log) if h['hook'] == 'on_error'], message='on_error')
    assert error == [{'hook': 'on_error', 'label': 'file', 'exc': 'ValueError: boom',
                      'context': {'kind': 'rpc', 'name': 'Greeting.fail', 'service': 'Greeting',
                                  'trace_id': 'trace-ep-1', 'instance_id': instance}}]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert hooks(log)[-1] == {'hook': 'on_stop', 'label': 'file', 'instance': instance}


def test_a_plugin_mistake_in_the_config_is_one_line_and_exit_2(cluster, tmp_path):
    config = tmp_path / 'bad.yml'
    config.write_text('interfaces:\n  Greeting:\n    class: demo:Greeting\n'
                      'plugins:\n  - plugged:NotAPlugin\n')
    result = cluster.run('instance', '--config', str(config))
    assert one_line_error(result, 2) == ('error: %s:5: plugins.0: plugged:NotAPlugin is not a '
                                         'fannode.Plugin subclass' % config)


class FakeSentry(http.server.BaseHTTPRequestHandler):
    """Keeps the events of the envelopes posted to it."""

    events: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        if self.headers.get('Content-Encoding') == 'gzip':
            body = gzip.decompress(body)
        for line in body.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and 'exception' in item:
                self.events.append((self.path, item))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{}')

    def log_message(self, *args):
        pass


@pytest.fixture
def sentry():
    pytest.importorskip('sentry_sdk')
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), FakeSentry)
    server.events = FakeSentry.events = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_sentry_plugin_sends_unexpected_errors_with_tags(cluster, tmp_path, sentry):
    config = tmp_path / 'greeting-sentry.yml'
    config.write_text('interfaces:\n  Greeting:\n    class: demo:Greeting\nplugins:\n'
                      '  - class: fannode.contrib.sentry:SentryPlugin\n'
                      '    dsn: http://public@127.0.0.1:%d/42\n'
                      '    environment: test\n' % sentry.server_address[1])
    cluster.start_hub()
    proc = cluster.start_instance(str(config))
    assert cluster.run('request', 'Greeting.lookup', '{"key": "k"}').returncode == 1  # declared: not sent
    assert cluster.run('request', 'Greeting.fail', '--trace-id', 'trace-sentry-1').returncode == 1
    [(path, event)] = wait_until(lambda: sentry.events, timeout=15, message='an event at the fake Sentry')
    assert path == '/api/42/envelope/'
    [exc] = event['exception']['values']
    assert (exc['type'], exc['value']) == ('ValueError', 'boom')
    instance = json.loads(cluster.run('discover', '--json').stdout)['Greeting'][0]['id']
    assert event['tags'] == {'service': 'Greeting', 'kind': 'rpc', 'name': 'Greeting.fail',
                             'trace_id': 'trace-sentry-1', 'instance_id': instance}
    assert event['environment'] == 'test'
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert len(sentry.events) == 1, sentry.events  # nothing twice (no logging integration)
