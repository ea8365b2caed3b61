"""How `python -m bench` runs its cases: one after another in one process tree, each with
its processes in a scratch directory of its own, stopped by PID when it ends; RabbitMQ and
the anchors venv made once, on first need, and shared. A case that fails becomes a
`failed: …` row and the run goes on; Ctrl-C or SIGTERM stops everything and exits 130."""
from __future__ import annotations

import resource
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Collection

import psutil
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench import anchors
from bench.procs import ANY, CLIENT, BenchError, Procs, Skip, free_port, pin
from bench.report import Row, skipped

Case = Callable[['Context'], list[Row]]
ROUNDS = 3  # repetitions of every measurement: the median and min–max come from these
QUICK_ROUNDS = 2  # --quick is a smoke test (every row, still a ratio per round); the full run is the result


class Context:
    """What a case gets: the mode, its processes, the shared servers and anchors venv,
    the live display, and a place for details that go to the JSON only."""

    def __init__(self, quick: bool, without: set[str], progress: Progress):
        self.quick = quick
        self.without = without
        self.dir = Path(tempfile.mkdtemp(prefix='fannode-bench-'))
        self.servers = anchors.Servers(Procs(self.dir / 'servers'))
        self.procs: Procs  # the current case's, set by run_cases
        self.details: dict[str, Any] = {}
        self.problems: list[str] = []  # cleanup that failed: the run fails too
        self.progress = progress
        self.task = progress.add_task('', total=None, case='')
        self._rabbitmq: str | Exception | None = None
        self._rabbitmq_lock = threading.Lock()  # one start, whether early (prestart) or on first need
        self._prestart: threading.Thread | None = None
        self._anchors: str | Exception | None = None
        self.steps: list[tuple[float, str]] = []  # the current case's: (seconds since its start, step)
        self.case_started = time.monotonic()
        self._stopper: threading.Thread | None = None  # the last case's processes stopping
        self.deferred: list[Callable[[], Any]] = []  # the current case's cleanups, see `later`

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full

    def step(self, text: str) -> None:
        self._note(text)
        self.progress.update(self.task, description=escape(text) + '…')

    def _note(self, text: str) -> None:
        """Keep the step with its time, for the JSON: where a case's time goes."""
        if threading.current_thread() is threading.main_thread():  # not RabbitMQ's early start
            self.steps.append((round(time.monotonic() - self.case_started, 2), text))

    def say(self, text: str) -> None:
        self._note(text.strip())
        self.progress.console.print(text, highlight=False, soft_wrap=True)

    def missing(self, component: str) -> None:
        if component in self.without:
            raise Skip('%s left out (--without)' % component)

    def available(self, need: Callable[[], str]) -> tuple[str, str]:
        """(what `need()` returns, '') or ('', why it is missing): `ctx.available(ctx.rabbitmq)`."""
        try:
            return need(), ''
        except Skip as e:
            return '', str(e)

    def rabbitmq(self) -> str:
        """The AMQP URL of the run's RabbitMQ, started on first use (5-8 s); Skip when it
        is not installed or left out."""
        self.missing('rabbitmq')
        with self._rabbitmq_lock:
            if self._rabbitmq is None:
                try:
                    self.step('starting RabbitMQ (scripts/provision, about 6 s)')
                    port = free_port()
                    self.servers.start({'rabbitmq': port})
                    self._rabbitmq = 'amqp://guest:guest@127.0.0.1:%d/%%2F' % port
                    self.say('  ✓ RabbitMQ %s on 127.0.0.1:%d' % (self.servers.versions.get('rabbitmq-server', ''),
                                                                   port))
                except (Skip, BenchError) as e:
                    self._rabbitmq = e
        if isinstance(self._rabbitmq, Exception):
            raise self._rabbitmq
        return self._rabbitmq

    def prestart_rabbitmq(self) -> None:
        """Start RabbitMQ in a thread now, for a case that will need it: its 5-8 s of boot
        overlap that case's own processes starting (never a measurement: the case asks
        `rabbitmq()`, which waits for it, before it measures anything)."""
        if 'rabbitmq' not in self.without:
            self._prestart = threading.Thread(target=self.available, args=(self.rabbitmq,), daemon=True)
            self._prestart.start()

    def settle(self) -> None:
        """Wait for an early RabbitMQ start to end (started or failed), so that stopping the
        servers, on Ctrl-C too, finds every process it started."""
        if self._prestart is not None:
            self._prestart.join(anchors.START_TIMEOUT['rabbitmq'] + 5)

    def anchors(self) -> str:
        """The Python of bench/.anchors-venv (nameko, zerorpc), made on first use (about
        40 s, once); Skip when it cannot be made."""
        self.missing('anchors')
        if self._anchors is None:
            try:
                self.step('anchors venv')
                self._anchors = str(anchors.ensure_venv(self.say))
            except BenchError as e:
                self._anchors = Skip('anchors venv: %s' % e)
        if isinstance(self._anchors, Exception):
            raise self._anchors
        return self._anchors

    def later(self, cleanup: Callable[[], Any]) -> None:
        """Run `cleanup` (stopping what the case started outside `procs`: a node in tmux)
        with the case's processes, in the thread that stops them once the case ends."""
        self.deferred.append(cleanup)

    def stop_now(self) -> None:
        """Stop the current case's processes and run its cleanups, here (Ctrl-C)."""
        try:
            self.procs.stop_all()
        finally:
            for cleanup in self.deferred:
                cleanup()

    def stop_later(self, procs: Procs, info: dict[str, Any], servers: dict[str, Any] | None = None) -> None:
        """Stop a case's `procs` and run its cleanups (`later`) in a thread, and remove the
        logs unless it failed; then the servers too when `servers` (each case's info so
        far: logs kept if one failed) is given. The next case starts meanwhile; the time
        goes to info['stop_seconds']."""
        self.quiet()
        deferred, self.deferred = self.deferred, []

        def stop() -> None:
            started = time.monotonic()
            try:
                procs.stop_all()
                for cleanup in deferred:
                    cleanup()
                if info['status'] != 'failed':
                    procs.cleanup()
                if servers:
                    self.settle()
                    for line in self.servers.stop_all(any(i['status'] == 'failed' for i in servers.values())):
                        self.say('[red]%s[/]' % escape(line))
                        self.problems.append(line)
            except Exception as e:  # reported, and the run fails, as a failed stop did before
                self.problems.append('stopping the processes of %s: %s: %s' % (procs.dir, type(e).__name__, e))
            finally:
                info['stop_seconds'] = round(time.monotonic() - started, 1)
        self._stopper = threading.Thread(target=stop, name='stopper')
        self._stopper.start()

    def quiet(self) -> None:
        """Wait until the last case's processes are stopped. Every case calls it before it
        measures anything (`rounds` does), so no teardown ever runs beside a measurement.
        Threads of a case may call it at once (the top case's two tops)."""
        stopper = self._stopper
        if stopper is not None:
            stopper.join()
            self._stopper = None

    def reps(self) -> int:
        return self.pick(ROUNDS, QUICK_ROUNDS)

    def rounds(self, measures: dict[str, Callable[[bool], float]], reps: int | None = None,
               once: Collection[str] = ()) -> dict[str, list[float]]:
        """Each measure once to warm up (`measure(True)`, not kept), then `reps` rounds of
        all of them in turn (3; 2 with --quick), so a load change hits every one alike.
        With --quick, the measures named in `once` (secondary rows) run in the first round
        only: one sample, still a ratio to the first round of their anchor."""
        reps = self.reps() if reps is None else reps
        self.quiet()
        for name, measure in measures.items():
            self.step('warming up: %s' % name)
            measure(True)
        samples: dict[str, list[float]] = {name: [] for name in measures}
        for i in range(reps):
            for name, measure in measures.items():
                if i and self.quick and name in once:
                    continue
                self.step('round %d/%d: %s' % (i + 1, reps, name))
                samples[name].append(measure(False))
        return samples


class Background:
    """CPU used by other processes than ours (this one, everything it started, the
    servers) during a case, in cores. A busy neighbour moves every ratio; the report says so."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, 'irq', 0.0) + getattr(t, 'softirq', 0.0)
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime  # reaped children included
        live = psutil.Process().children(recursive=True)
        for pid in self.ctx.servers.pids():
            try:
                live.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        for p in live:
            try:
                c = p.cpu_times()  # and the children each has reaped
                ours += c.user + c.system + c.children_user + c.children_system
            except psutil.NoSuchProcess:
                pass
        return time.monotonic(), busy, ours

    def other(self) -> float:
        end = self._sample()
        wall = end[0] - self.start[0]
        return max(0.0, ((end[1] - self.start[1]) - (end[2] - self.start[2])) / wall) if wall > 0 else 0.0


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (a CI timeout, `kill`): clean up as for Ctrl-C


def progress_display(err: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn('[bold]{task.fields[case]}[/]'), MofNCompleteColumn(),
                    TextColumn('{task.description}'), BarColumn(bar_width=20), TimeElapsedColumn(),
                    console=err, transient=True, refresh_per_second=4)


def run_cases(ctx: Context, cases: dict[str, Case], server_cases: list[str],
              pairs: set[str] | None = None) -> tuple[list[Row], dict[str, Any]]:
    """Every case in turn; the rows, and per case its time, background CPU, status and
    details. The servers stop after the last of `server_cases` (an idle broker still
    uses some CPU). In the cases of `pairs` (None: all) this process, the caller, runs on
    the client's CPU. A case's processes stop in a thread while the next case starts
    its own; it measures nothing before they are gone (`Context.quiet`).
    KeyboardInterrupt goes through, once everything is stopped."""
    rows: list[Row] = []
    info: dict[str, Any] = {}
    ctx.progress.update(ctx.task, total=len(cases))
    try:
        for name, case in cases.items():
            ctx.progress.update(ctx.task, case=name, description='starting…')
            ctx.procs = Procs(ctx.dir / name)
            ctx.details, ctx.deferred = {}, []
            if pairs is None or name in pairs:  # the callers here, and what starts outside Procs
                ctx.procs.note_pin('bench', pin(CLIENT))
            started, cpu = time.monotonic(), Background(ctx)
            ctx.steps, ctx.case_started = [], started
            status = 'ok'
            try:
                got = case(ctx)
            except Skip as e:  # the whole case needs what is missing (wrk, say)
                status, got = 'skipped', [skipped('all', name, '', str(e))]
            except BenchError as e:
                status, got = 'failed', [Row('all', name, '', note='failed: %s (logs in %s)' % (e, ctx.procs.dir))]
            except Exception as e:  # a bug or an unexpected error: one row, the run goes on
                status = 'failed'
                got = [Row('all', name, '', note='failed: %s: %s (logs in %s)' % (type(e).__name__, e, ctx.procs.dir))]
            except BaseException:  # Ctrl-C, SIGTERM: everything stops now, here
                _stop(ctx.stop_now)
                raise
            finally:
                pin(ANY)
            ctx.step('stopping')
            for row in got:
                row.case = name
            rows += got
            info[name] = {'seconds': round(time.monotonic() - started, 1), 'stop_seconds': None,
                          'background_cpu': round(cpu.other(), 2),
                          'status': status, 'details': ctx.details, 'pinning': ctx.procs.pinned,
                          'steps': ctx.steps}
            ctx.say('  %s %s: %d rows in %.0f s' % ('✗' if status == 'failed' else '✓', name, len(got),
                                                   info[name]['seconds']))
            ctx.progress.advance(ctx.task)
            ctx.stop_later(ctx.procs, info[name], info if server_cases and name == server_cases[-1] else None)
    finally:
        _stop(ctx.quiet)
        _stop_servers(ctx, info)
    return rows, info


def _stop_servers(ctx: Context, info: dict[str, Any]) -> None:
    """Stop RabbitMQ (if started); keep its dir for its logs if a case failed."""
    ctx.settle()
    problems = _stop(lambda: ctx.servers.stop_all(any(i['status'] == 'failed' for i in info.values())))
    for line in problems or []:
        ctx.say('[red]%s[/]' % escape(line))
        ctx.problems.append(line)


def _stop(stop: Callable[[], Any]) -> Any:
    """Run a cleanup that a second Ctrl-C or SIGTERM must not cut short (it would leave
    servers running); the handlers are put back after."""
    term, intr = signal.signal(signal.SIGTERM, signal.SIG_IGN), signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return stop()
    finally:
        signal.signal(signal.SIGTERM, term)
        signal.signal(signal.SIGINT, intr)


def install_signals() -> None:
    signal.signal(signal.SIGTERM, _terminated)
