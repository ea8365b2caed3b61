"""The log handler of fannode processes: access lines are flushed once per loop turn,
everything else at once, and lines always come out in the order they were logged."""
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import logging, os, sys
    import gevent
    from fannode.core import logsetup, trace
    logsetup.setup('INFO', 'Demo')
    access, other = logging.getLogger('fannode.web.access'), logging.getLogger('demo')

    def size():
        return os.fstat(2).st_size

    def work():
        trace.set_id('t-1')
        access.info('GET /a 200')
        access.info('GET /b 200')
        print('after-batch', size(), file=sys.stdout, flush=True)  # not yet written
        other.info('plain line')  # flushes the batch before it, in order
        print('after-plain', size(), file=sys.stdout, flush=True)
        access.info('GET /c 200')
        gevent.sleep(0)  # one loop turn: the batch goes out
        print('after-turn', size(), file=sys.stdout, flush=True)

    gevent.spawn(work).join()
''')


def run(tmp_path, **env):
    log = tmp_path / 'err.log'
    with open(log, 'wb') as err:
        done = subprocess.run([sys.executable, '-c', SCRIPT], stdout=subprocess.PIPE, stderr=err,
                              text=True, timeout=30, env={**os.environ, **env})
    assert done.returncode == 0, log.read_text()
    sizes = dict(line.split() for line in done.stdout.splitlines())
    return {k: int(v) for k, v in sizes.items()}, log.read_text()


def test_access_lines_are_batched_per_loop_turn_and_kept_in_order(tmp_path):
    sizes, text = run(tmp_path)
    lines = text.splitlines()
    assert [line.split('] ', 1)[1] for line in lines] == ['GET /a 200', 'GET /b 200', 'plain line', 'GET /c 200']
    assert all(' Demo ' in line and '[t-1]' in line for line in lines)
    assert sizes['after-batch'] == 0
    assert sizes['after-plain'] == len('\n'.join(lines[:3])) + 1
    assert sizes['after-turn'] == len(text)


def test_batching_holds_with_pythonunbuffered(tmp_path):
    # Containers often set it; sys.stderr would then write each line straight through.
    sizes, text = run(tmp_path, PYTHONUNBUFFERED='1')
    assert sizes['after-batch'] == 0 and sizes['after-turn'] == len(text)
