"""The anchors' client for `python -m bench.nameko`, run in the anchors venv: the rates of
bench/rpc.py, measured with each anchor's own client in its own event loop.

    python bench/services/anchor_client.py nameko AMQP_URL
    python bench/services/anchor_client.py zerorpc tcp://127.0.0.1:PORT

Prints {"ready": true} once connected, then answers each command on stdin with one JSON
line on stdout:

    check                       {"reply": <what greet(name='Joe') returned>}
    sequential SECONDS          {"calls": N, "seconds": S}: one call at a time
    in_flight N SECONDS RAMP    {"calls": N, "seconds": S}: N calls outstanding, counted
                                once RAMP seconds have passed

A failed call answers {"error": "..."}. Exits at the end of stdin.
"""
import sys

if sys.argv[1] == 'nameko':  # before anything else imports socket
    import eventlet
    eventlet.monkey_patch()

import collections  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

REPLY = 'Hi, Joe!'


def sequential(call, seconds):
    calls, start = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        now = time.perf_counter()
        if now - start >= seconds:
            return calls, now - start


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
        calls, start = 0, time.perf_counter()
        while True:
            turn()
            calls += 1
            now = time.perf_counter()
            if now - start >= seconds:
                break
        for reply in window:  # the rest, not counted
            reply.result()
        return calls, now - start

    return (lambda: greet(name='Joe')), in_flight, proxy.stop


def zerorpc(endpoint):
    """zerorpc.Client under gevent, its defaults. In flight: N greenlets each looping the
    blocking call on the one client, as bench/rpc.py does for fannode."""
    import gevent
    import zerorpc as z
    client = z.Client()
    client.connect(endpoint)

    def in_flight(n, seconds, ramp):
        count, running = 0, True

        def worker():
            nonlocal count
            while running:
                client.greet('Joe')
                count += 1

        workers = [gevent.spawn(worker) for _ in range(n)]
        try:
            gevent.sleep(ramp)
            start_calls, start = count, time.perf_counter()
            gevent.sleep(seconds)
            end_calls, end = count, time.perf_counter()
        finally:
            running = False
            gevent.joinall(workers, timeout=5)
            gevent.killall(workers, block=False)
        for g in workers:
            if g.exception is not None:
                raise g.exception
        return end_calls - start_calls, end - start

    return (lambda: client.greet('Joe')), in_flight, client.close


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
                calls, seconds = sequential(call, float(words[1]))
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
