"""The main() every bench shares: run the measurements under a live display on stderr,
turn Ctrl-C and SIGTERM into exit 130 and any failure into one line and exit 1, and stop
every process by PID whatever happens."""
from __future__ import annotations

import argparse
import signal
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterator

from rich.console import Console
from rich.markup import escape

from bench.procs import BenchError, Procs

Figures = dict[str, Any]


def spinner(title: str) -> Callable[[Console], ContextManager[Callable[[str], None]]]:
    """The usual live display: a spinner titled `title`; the measure gets `status(text)`
    to say what it is doing now."""
    @contextmanager
    def show(err: Console) -> Iterator[Callable[[str], None]]:
        with err.status(title) as status:
            yield lambda text: status.update(text + '…')
    return show


def fail(err: Console, message: str) -> None:
    err.print('[bold red]bench failed:[/] %s' % escape(message), highlight=False, soft_wrap=True)


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (a CI timeout, `kill`): clean up as for Ctrl-C


def run_bench(procs: Procs, measure: Callable[[Callable[[str], None], Any], Figures],
              render: Callable[[Figures, Console], None],
              display: Callable[[Console], ContextManager[Any]],
              stop: Callable[[bool], list[str] | None] | None = None) -> int:
    """`measure(say, shown)` inside `display(err)` (`shown`: what the display yields, the
    status callback of `spinner`); then `render(figures, err)`. `stop(keep_logs)` runs
    after the processes are stopped (servers, stray children) and returns the problems
    it met, one line each: they fail the run too. The exit code: 0, 1 or 130."""
    signal.signal(signal.SIGTERM, _terminated)
    err = Console(stderr=True)
    keep_logs = False
    problems: list[str] = []
    try:
        with display(err) as shown:
            figures = measure(lambda text: err.print(text, highlight=False, soft_wrap=True), shown)
    except KeyboardInterrupt:
        err.print('interrupted')
        return 130
    except Exception as e:  # BenchError, an error from a call, or a bug here: one line
        keep_logs = True
        message = str(e) if isinstance(e, BenchError) else '%s: %s' % (type(e).__name__, e)
        fail(err, '%s (process logs in %s)' % (message, procs.dir))
        return 1
    finally:
        # A second SIGTERM (or Ctrl-C) now would cut the cleanup short and leave servers
        # running: let the cleanup finish, it stops everything anyway.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        procs.stop_all()  # newest first; servers, if any, after the processes that use them
        if stop is not None:
            problems = stop(keep_logs) or []
        for line in problems:
            fail(err, line)
        if not keep_logs and not problems:
            procs.cleanup()
    if problems:
        return 1
    render(figures, err)
    return 0


# -- the command line -------------------------------------------------------------------

def quick_defaults(args: argparse.Namespace, **defaults: tuple[Any, Any]) -> None:
    """Fill in the options left unset: name=(default, default with --quick)."""
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)


def parse_rate_args(parser: argparse.ArgumentParser, argv: list[str] | None,
                    concurrency_help: str) -> argparse.Namespace:
    """The flags of the RPC benches (bench, bench.nameko): rates timed in rounds."""
    parser.add_argument('--duration', type=float, metavar='SECONDS',
                        help='timed seconds per rate measurement, split over the rounds '
                             '(default: 3, or 0.6 with --quick)')
    parser.add_argument('--rounds', type=int, metavar='N',
                        help='interleave the rate measurements in N rounds, so a load change on '
                             'the machine hits all of them alike (default: 3, or 1 with --quick)')
    parser.add_argument('--quick', action='store_true', help='short measurements: a smoke test')
    parser.add_argument('--concurrency', type=int, default=50, metavar='N', help=concurrency_help)
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')
    args = parser.parse_args(argv)
    quick_defaults(args, duration=(3.0, 0.6), rounds=(3, 1))
    if args.duration <= 0 or args.rounds < 1 or args.concurrency < 1:
        parser.error('--duration, --rounds and --concurrency must be positive')
    args.warmup = 0.2 if args.quick else 0.5
    return args
