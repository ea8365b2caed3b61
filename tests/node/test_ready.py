"""The node's readiness probes read answers from other processes: checked, not trusted.
A strange answer means "nothing registered", never an error that ends readiness."""
import asyncio
import threading

import zmq
import zmq.asyncio

from conftest import free_port
from fannode.core import wire
from fannode.node import ready


def hub_answering(replies):
    """A ROUTER on a free port that answers each request with the next of `replies`
    (a function of the request giving the frame to send)."""
    port = free_port()
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.linger = 0
    router.bind('tcp://127.0.0.1:%d' % port)

    def serve():
        for reply in replies:
            if not router.poll(5000):
                break
            identity, frame = router.recv_multipart()
            router.send_multipart([identity, reply(wire.decode(frame))])
        router.close()
    threading.Thread(target=serve, daemon=True).start()
    return 'hub://127.0.0.1:%d' % port


def test_a_hub_that_answers_garbage_lists_nothing():
    good = {'Greeting': [{'pid': 11, 'host': 'h', 'id': 'a'}, 'junk', {'pid': 'x'}], 7: [{}], 'Web': {'pid': 12}}
    replies = [
        lambda m: b'\xc1 not msgpack',                            # skipped; then times out
        lambda m: m.reply(wire.REP, [1, 2]).encode(),             # not a mapping
        lambda m: m.reply(wire.REP, good).encode(),               # only the well-formed entry counts
    ]
    url = hub_answering(replies)

    async def main():
        probe = ready.HubProbe(url, zmq.asyncio.Context.instance())
        try:
            assert await probe.call('services', timeout=0.5) is None
            assert await probe.registered_pids() == {}
            assert await probe.registered_pids() == {11: ['Greeting']}
        finally:
            probe.close()
    asyncio.run(main())


def test_an_http_check_against_a_server_with_an_endless_first_line_is_not_ready():
    async def main():
        async def endless(reader, writer):
            writer.write(b'HTTP/1.0 200 ' + b'x' * 200_000)
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(endless, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            assert await ready.http_ok('http://127.0.0.1:%d/' % port) is False
    asyncio.run(main())
