"""The anchor's server: plain blocking pyzmq REP, msgpack in and out, nothing else.

    python -m bench.raw_server PORT

Prints "ready" once bound; answers {'name': 'Joe'} with 'Hi, Joe!' until SIGTERM, which
keeps its default action (a Python handler would wait for the blocking recv to return).
"""
import sys

import msgpack
import zmq


def main() -> None:
    port = int(sys.argv[1])
    context = zmq.Context()
    socket = context.socket(zmq.REP)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind('tcp://127.0.0.1:%d' % port)
    print('ready', flush=True)
    while True:
        request = msgpack.unpackb(socket.recv())
        socket.send(msgpack.packb('Hi, %s!' % request['name']))


if __name__ == '__main__':
    main()
