"""A long-lived caller for the route tests (tests/e2e/route_scenario.py): calls
Greeting.whoami unpinned, then pinned to the version in argv[1], every 20 ms through
`fannode.proxy` (the process's default client, which follows the route), printing
`TIME UNPINNED_PID PINNED_PID` per pair, or `TIME error MESSAGE`."""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402

import fannode  # noqa: E402


def main() -> None:
    unpinned = fannode.proxy('Greeting', timeout=5)
    pinned = fannode.proxy('Greeting', version=sys.argv[1], timeout=5)
    print('calling', flush=True)
    while True:
        started = time.time()
        try:
            print('%.3f %s %s' % (started, unpinned.whoami(), pinned.whoami()), flush=True)
        except Exception as e:
            print('%.3f error %s' % (started, e), flush=True)
        time.sleep(0.02)


if __name__ == '__main__':
    main()
