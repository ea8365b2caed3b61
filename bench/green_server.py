"""The gevent anchor's server: a zmq.green ROUTER, what one writes by hand for RPC under
gevent without a framework.

    python -m bench.green_server PORT

Each request is [request id, msgpack body] from a DEALER (the ROUTER adds the peer's
identity in front); the reply goes back as [identity, request id, msgpack reply]. Answered
inline, one after another: greet is trivial, and no greenlet per request is the fastest
this can be. Prints "ready" once bound; SIGTERM keeps its default action.
"""
import msgpack
import zmq.green as zmq

from bench.raw_server import answer, bound


def main() -> None:
    socket = bound(zmq, zmq.ROUTER)
    while True:
        peer, request_id, body = socket.recv_multipart()
        socket.send_multipart([peer, request_id, msgpack.packb(answer(msgpack.unpackb(body)))])


if __name__ == '__main__':
    main()
