"""The anchors' client for the rpc case of `python -m bench`, run in the anchors venv: the rates of
bench/rpc.py, measured with each anchor's own client in its own event loop.

    python bench/services/anchor_client.py nameko AMQP_URL
    python bench/services/anchor_client.py zerorpc tcp://127.0.0.1:PORT

Prints {"ready": true} once connected, then answers each command on stdin with one JSON
line on stdout:

    check                       {"reply": <what greet(name='Joe') returned>}
    sequential SECONDS          {"calls": N, "seconds": S}: one call at a time
    in_flight N SECONDS RAMP    {"calls": N, "seconds": S}: N calls outstanding, counted
                                once RAMP seconds have passed

A failed call answers {"error": "..."}. Exits at the end of stdin. The timing loops are
bench/loops.py, the ones fannode's rows run (found through PYTHONPATH, as the bench sets it).
"""
import sys

if sys.argv[1] == 'nameko':  # before anything else imports socket
    import eventlet
    eventlet.monkey_patch()

import collections  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from bench import loops  # noqa: E402

REPLY = 'Hi, Joe!'


def nameko(url):
    """ClusterRpcProxy, nameko's standalone client. In flight: call_async from one green
    thread, as nameko's docs advise (the proxy is not safe to share between threads)."""
    from nameko.standalone.rpc import ClusterRpcProxy
    proxy = ClusterRpcProxy({'AMQP_URI': url})
    greet = proxy.start().greeting.greet

    def in_flight(n, seconds, ramp):
        window = collections.deque(greet.call_async(name='Joe') for _ in range(n))

        def turn():
            if window.popleft().result() != REPLY:
                raise AssertionError('unexpected reply')
            window.append(greet.call_async(name='Joe'))

        ramp_end = time.perf_counter() + ramp
        while time.perf_counter() < ramp_end:
            turn()
        counted = loops.sequential(turn, seconds)  # a turn: one reply in, one call out
        for reply in window:  # the rest, not counted
            reply.result()
        return counted

    return (lambda: greet(name='Joe')), in_flight, proxy.stop


def zerorpc(endpoint):
    """zerorpc.Client under gevent, its defaults. In flight: N greenlets each looping the
    blocking call on the one client, as bench/rpc.py does for fannode."""
    import zerorpc as z
    client = z.Client()
    client.connect(endpoint)
    greet = (lambda: client.greet('Joe'))
    return greet, (lambda n, seconds, ramp: loops.in_flight(greet, n, seconds, ramp)), client.close


def main():
    kind, address = sys.argv[1], sys.argv[2]
    call, in_flight, close = {'nameko': nameko, 'zerorpc': zerorpc}[kind](address)
    print(json.dumps({'ready': True}), flush=True)
    for line in sys.stdin:  # blocks the event loop meanwhile: nothing of ours runs then
        words = line.split()
        try:
            if words[0] == 'check':
                answer = {'reply': call()}
            elif words[0] == 'sequential':
                calls, seconds = loops.sequential(call, float(words[1]))
                answer = {'calls': calls, 'seconds': seconds}
            elif words[0] == 'in_flight':
                calls, seconds = in_flight(int(words[1]), float(words[2]), float(words[3]))
                answer = {'calls': calls, 'seconds': seconds}
            else:
                answer = {'error': 'unknown command %r' % line.strip()}
        except Exception as e:
            answer = {'error': '%s: %s' % (type(e).__name__, e)}
        print(json.dumps(answer), flush=True)
    close()


if __name__ == '__main__':
    main()
