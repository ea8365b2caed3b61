"""Plain pyzmq sockets on the gevent loop: made with the frame size limit, watched by one
io watcher on ZMQ_FD, checked for input with ZMQ_EVENTS."""
from __future__ import annotations

import sys
from typing import Any, Callable

import gevent
import zmq
import zmq.green

from fannode.core import serial

# Plain ints: pyzmq's enum flags cost an IntFlag operation on each use.
EVENTS, POLLIN, NOBLOCK, SNDMORE = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.NOBLOCK), int(zmq.SNDMORE)
READ = 1  # a gevent io watcher's event mask


def monitor_event(frames: list[bytes]) -> int:
    """The event number of a socket monitor message: its first frame starts with it (16
    bits, native order). Parsed here: zmq.utils.monitor imports asyncio, 5 MiB an instance."""
    return int.from_bytes(frames[0][:2], sys.byteorder)


def shared_context() -> zmq.Context:
    """The process's default context. It is zmq.green's, which HubLink and service code
    default to, so that every socket shares one libzmq context. Our sockets on it are
    plain ones all the same (socket_class=zmq.Socket)."""
    return zmq.green.Context.instance()


def plain_socket(context: zmq.Context, kind: int) -> zmq.Socket:
    socket = context.socket(kind, socket_class=zmq.Socket)
    # libzmq drops a peer that sends a bigger frame before allocating it: no frame we
    # could not decode anyway ever takes memory here.
    socket.setsockopt(zmq.MAXMSGSIZE, serial.MAX_MESSAGE)
    return socket


def watch(socket: zmq.Socket, callback: Callable[[], None]) -> Any:
    """Call `callback` in the loop whenever `socket` may have input.

    ZMQ_FD signals edges only, and any operation on the socket may consume one, so
    the callback must read until ZMQ_EVENTS shows no input, and whoever sends must
    check it after (see `wake`). The first run catches anything already waiting."""
    loop = gevent.get_hub().loop
    watcher = loop.io(socket.getsockopt(zmq.FD), READ)
    watcher.start(callback)
    loop.run_callback(callback)
    return watcher


def has_input(socket: zmq.Socket) -> bool:
    events: int = socket.getsockopt(EVENTS)  # type: ignore[assignment]  # an int for EVENTS (typing.cast: a call)
    return bool(events & POLLIN)


def wake(socket: zmq.Socket, callback: Callable[[], None]) -> None:
    """After a send: if input is waiting, the watcher may never fire for it, so read soon."""
    if has_input(socket):
        gevent.get_hub().loop.run_callback(callback)
