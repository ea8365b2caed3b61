"""node.yml `logs:` end to end: each block's output in its own rotated file, and the
log hub's ring on disk, the same after the hub is killed and started again by the node."""
from __future__ import annotations

import json
import os
import re
import signal
import sys

import pytest

from conftest import wait_until
from test_node import workshop
from test_observability import greet

pytestmark = pytest.mark.e2e


# ~70-byte lines as fast as the node takes them, then quiet: its last line is known
CHATTY = ('import time\nfor i in range(3000):\n    print("line %05d " % i + "x" * 40)\n'
          'print("last line", flush=True)\ntime.sleep(600)\n')
STAMP = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} greeting\.1 │ ')


def test_a_fast_block_fills_exactly_its_file_and_two_backups_each_bounded_newest_lines_last(node):
    script = node.dir / 'chatty.py'
    script.write_text(CHATTY)
    node.write(f'''registry: {node.hub}
logs: {{dir: logs, max_size: 10KB, backups: 2}}
instances:
  greeting: [{sys.executable}, -u, {script}]
  quiet:
    command: sleep 600
    logs: false
''')
    node.up()
    node.wait_for('greeting.1 │ last line', 60)
    logs = node.dir / 'logs'
    current = logs / 'greeting.log'
    wait_until(lambda: current.exists() and 'last line' in current.read_text(), 10, message='the last line on disk')
    node.wait_for('hub listening', 30)
    wait_until(lambda: (logs / 'hub.log').exists(), 10, message='the hub line on disk')  # flushed within 0.5 s
    assert sorted(os.listdir(logs)) == ['greeting.log', 'greeting.log.1', 'greeting.log.2', 'hub.log']
    for name in ('greeting.log', 'greeting.log.1', 'greeting.log.2'):
        assert 0 < (logs / name).stat().st_size <= 10 * 1024
    lines = current.read_text().splitlines()
    assert lines[-1].endswith('│ last line') and all(STAMP.match(line) for line in lines), lines[-3:]
    # the backups hold the lines just before, in order: .2 older than .1 older than the current file
    numbers = [int(m.group(1)) for name in ('greeting.log.2', 'greeting.log.1', 'greeting.log')
               for m in re.finditer(r'line (\d{5})', (logs / name).read_text())]
    assert numbers == list(range(numbers[0], 3000)), numbers[:3]
    assert 'hub listening' in (logs / 'hub.log').read_text()


def test_a_log_dir_that_cannot_be_made_is_a_one_line_error_naming_the_key(node):
    (node.dir / 'afile').write_text('')
    node.write(f'''registry: {node.hub}
instances:
  greeting:
    command: sleep 600
    logs: {{dir: afile/logs}}
''')
    result = node.cli('up')
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and 'node.yml:5: instances.greeting.logs.dir: cannot make the directory' in lines[0], lines


def test_tail_and_trace_answer_the_same_after_the_hub_is_killed_and_restarted_by_the_node(node):
    node.write(workshop(node.hub, node.web_port, greeting=1, listen=1, web=1))
    node.up()
    node.wait_for('cluster ready', 90)
    trace_id = greet(node.web_port, 'Ringo')

    def tail() -> list[dict]:
        result = node.cli('tail', '-n', '1000', '--no-follow', '--json')
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    def trace() -> list[dict]:
        result = node.cli('trace', trace_id, '--json')
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    wait_until(lambda: len([r for r in trace() if r['kind'] == 'span']) == 3, 20, message='the trace complete')
    # its log records may still be on their way (shipped in batches): the same on two reads
    seen: list = []
    wait_until(lambda: seen.append(trace()) or (len(seen) > 1 and seen[-1] == seen[-2]), 20,
               interval=0.5, message='the trace to settle')
    before_tail, before_trace = tail(), seen[-1]
    assert any('Saying hi to Ringo' in r.get('msg', '') for r in before_tail)

    hub = node.ps()['hub']['processes'][0]['pid']
    os.kill(hub, signal.SIGKILL)
    wait_until(lambda: node.ps()['hub']['processes'] and node.ps()['hub']['processes'][0]['pid'] != hub
               and node.ps()['hub']['state'] == 'ready', 60, message='the hub restarted')
    after_trace = trace()
    assert after_trace == before_trace
    # what tail showed then is still there, in the same order; the new hub's lines come after
    after_tail = tail()
    assert after_tail[:len(before_tail)] == before_tail
