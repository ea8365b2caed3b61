"""The node's watchdog: kills what the node started when the node is gone, however it went.

One per node, started by it (fannode.node.orphans.Groups) with a pipe on stdin. The node
writes `+PGID` for each process group it starts and `-PGID` when one is gone. When the
pipe closes — the node exited, or was SIGKILLed — every group still listed gets SIGKILL.
PR_SET_PDEATHSIG covers the node's own children only; their children (`sh -c "a & b"`,
a server's workers) stay in the child's group, and this is what catches them.

Run as a script with `python -I -S` and only the standard library, so it costs about one
small interpreter (measured in docs/node.md) and no import of fannode.
"""
import os
import signal

LONGEST = 32  # a line the node writes is '+' or '-' and a pid; anything longer is noise


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # A Ctrl-C or `kill` meant for the node must not take its backstop away first;
        # the node itself stops the groups on those, then closes the pipe.
        signal.signal(signum, signal.SIG_IGN)
    os.chdir('/')  # hold no directory of the user's
    groups: set[int] = set()
    pending = b''
    while True:
        chunk = os.read(0, 4096)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b'\n')
        if len(pending) > LONGEST:
            pending = b''
        for line in lines:
            op, digits = line[:1], line[1:]
            if digits.isdigit() and int(digits) > 1:
                if op == b'+':
                    groups.add(int(digits))
                elif op == b'-':
                    groups.discard(int(digits))
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:  # already gone
            pass


if __name__ == '__main__':
    main()
