"""Schedules files over worker processes: one fresh process per file, time and memory
limits, and nothing left running afterwards.

Isolation: for each package (a standalone file is its own package) a *package worker* is
forked from this process after torch is imported, imports the package once (what
``import pkg`` runs anyway before any of its modules) and then forks a fresh child per file.
A child imports its file, builds and analyzes its models, reports and exits, so nothing a
file or its models do (monkeypatching ``nn.Conv2d``, a registry, a thread) can reach another
file's result. Up to ``jobs`` package workers run at once, pulling files largest first, so
two of them share a big package.

Every package worker and every child leads its own process group, and this process is a
child subreaper, so that a process user code starts, even a detached one, ends up killed:
a child's group once it has reported or its time is up, a package worker's group when it
is done, and whatever was orphaned to us at the end of each file and of the run.
``--timeout`` bounds each file's whole analysis (import, builds, fix rebuilds); a package's
shared import gets the same bound. A child sends each model's report as soon as it is
analysed, so a file whose child times out or crashes keeps its finished models.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import glob
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from multiprocessing.connection import Pipe, wait
from pathlib import Path

from rflint.core import errors
from rflint.run import sandbox
from rflint.core.diagnostics import FileReport, ModelReport
from rflint.core.diagnostics import failure
from rflint.core.errors import one_line
from rflint.run.options import Job
from rflint.run.worker import fix_search_stopped, lint_file, record_inputs, remember_module_paths


def package_root(file: str) -> str:
    """The topmost folder of the package holding ``file`` (the file itself if standalone)."""
    folder = Path(file).parent
    if not (folder / "__init__.py").exists():
        return file
    while (folder.parent / "__init__.py").exists():
        folder = folder.parent
    return str(folder)


class _PackageWorker:
    """The parent's handle on a package worker and on the file its child is analyzing."""

    def __init__(self, root: str, job: Job):
        self.root = root
        self.connection, theirs = Pipe()
        sys.stdout.flush()  # or the child would write our buffered output a second time
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            self.connection.close()
            _exit_after(_serve_package, root, job, theirs)
        theirs.close()
        with contextlib.suppress(OSError):  # also set by the child; whichever runs first
            os.setpgid(self.pid, self.pid)
        self.ready = False  # the package's shared import is done
        self.current: str | None = None  # the file being analyzed
        self.child: int | None = None  # the process analyzing it
        self.model: str | None = None  # the model it is on, for blame
        self.found = 0  # the models its file has
        self.skipped: list[str] = []  # the candidates it found that are not models (FileReport.skipped)
        self.finished: list[ModelReport] = []  # their reports so far, kept if the child ends early
        self.deadline = time.monotonic() + job.timeout

    def give(self, file: str | None, timeout: float) -> bool:
        """Send the next file, or None to let the worker finish; False if it has died since
        its last report (a thread its package's import started may call ``os._exit``)."""
        self.current, self.child, self.model = file, None, None
        self.found, self.finished, self.skipped = 0, [], []
        self.deadline = time.monotonic() + timeout
        try:
            self.connection.send(file)
        except OSError:
            self.current = None
            return False
        return True

    def end(self) -> None:
        """Kill the worker, the child it is running and everything either started; reap it."""
        for group in (self.child, self.pid):
            _kill_group(group)
        self.connection.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def run(files: list[str], job: Job, jobs: int, on_report=None) -> list[FileReport]:
    """Lint ``files`` on up to ``jobs`` package workers; reports come back sorted by file.

    ``on_report(report)``, if given, sees each file's report as soon as it is final (a
    streamed output); files are then taken in path order, so that they finish in roughly
    the order they are shown, instead of largest first."""
    # imported once here so that forked workers start warm
    import rflint.frontends.discover  # noqa: F401
    import rflint.frontends.torch.analysis  # noqa: F401
    import rflint.source.literals  # noqa: F401
    import torch._dynamo  # noqa: F401  meta kernels import it on first use: once here, not once per worker

    remember_module_paths()
    gc.freeze()  # torch's million objects: the workers' collections need not walk them again
    queues = _queues(files, in_path_order=on_report is not None)
    running: list[_PackageWorker] = []
    reports = _Reports(on_report)
    with _reaping_orphans() as sweep:
        try:
            while any(queues.values()) or running:
                while len(running) < max(jobs, 1) and (root := _neediest(queues)):
                    running.append(_PackageWorker(root, job))
                now = time.monotonic()
                ready = wait([w.connection for w in running], timeout=max(0.0, min(w.deadline for w in running) - now))
                for worker in list(running):
                    if worker.connection in ready:
                        _receive(worker, queues, running, reports, job)
                    elif time.monotonic() > worker.deadline:
                        _lose(worker, queues, running, reports, job, timed_out=True)
                sweep(keep={w.pid for w in running})
        finally:
            with _deferring_interrupts():  # a second Ctrl-C must not leave workers behind
                for worker in running:
                    worker.end()
    return [reports[f] for f in sorted(reports)]


class _Reports(dict):
    """The reports received so far, by file; each is passed on as it arrives."""

    def __init__(self, on_report=None):
        super().__init__()
        self.on_report = on_report

    def __setitem__(self, file: str, report: FileReport) -> None:
        super().__setitem__(file, report)
        if self.on_report is not None:
            self.on_report(report)


def _receive(worker: _PackageWorker, queues, running, reports, job: Job) -> None:
    try:
        kind, file, payload = worker.connection.recv()
    except (EOFError, OSError, pickle.UnpicklingError):
        _lose(worker, queues, running, reports, job, "the process exited")
        return
    if kind == "ready":
        worker.ready = True
    elif kind == "started":
        worker.child = payload
        return
    elif kind == "model":
        worker.model = payload
        return
    elif kind == "found":
        worker.found, worker.skipped = payload
        return
    elif kind == "analysed":
        worker.finished.append(payload)
        return
    elif kind == "done":
        _kill_group(worker.child)  # whatever the file started
        reports[file] = payload
    elif kind == "lost":
        _blame(worker, reports, job, payload)
    _feed(worker, queues, running, job)


def _feed(worker: _PackageWorker, queues, running, job: Job) -> None:
    """Give a worker its package's next file; one with none left finishes and is reaped."""
    queue = queues[worker.root]
    if queue and worker.give(queue[0], job.timeout):
        queue.pop(0)  # else it waits for a fresh worker
        return
    worker.give(None, job.timeout)
    worker.end()
    running.remove(worker)


def _lose(worker: _PackageWorker, queues, running, reports, job: Job, why: str = "",
          timed_out: bool = False) -> None:
    """A worker that died (``why``) or ran out of time: kill it; blame the file it was on
    or, if it was still importing its package, every file of the package (each imports it
    first). The package's other files wait in their queue for a fresh worker."""
    worker.end()
    running.remove(worker)
    why = f"timed out after {job.timeout:g} s" if timed_out else why
    if worker.ready:
        _blame(worker, reports, job, why, timed_out)
    else:
        for file in queues[worker.root]:
            reports[file] = _failed_import(file, why)
        queues[worker.root].clear()


def _blame(worker: _PackageWorker, reports, job: Job, why: str, timed_out: bool = False) -> None:
    """The file a killed or crashed child was on keeps the models it finished; the model it
    was on gets an RF902 (an import: RF901), saying how many were not reached. Time that
    ran out in the fix search, once every model was analysed, costs only the fixes not
    found yet: the models that have an RF003 get a note instead. The report is incomplete,
    so it is not cached."""
    file = worker.current
    if file is None:
        return
    if worker.model is None:
        reports[file] = _failed_import(file, why)
        return
    report = FileReport(file, models=worker.finished, skipped=worker.skipped, complete=False)
    if timed_out and job.search_fixes and len(worker.finished) == worker.found:
        for model in worker.finished:
            if model.result is not None and not model.result.fully_utilized():
                model.fix_note = fix_search_stopped(job.timeout)
    else:
        message = f"cannot build {worker.model}: {why}"
        if (unreached := worker.found - len(worker.finished) - 1) > 0:
            because = "the file's time ran out (--timeout raises it)" if timed_out else "its process ended"
            message += f"; {unreached} more model{'s' * (unreached != 1)} not analysed: {because}"
        report.diagnostics.append(failure("RF902", file, 1, 1, message, (worker.model,)))
    reports[file] = report


def _failed_import(file: str, why: str) -> FileReport:
    return FileReport(file, diagnostics=[failure("RF901", file, 1, 1, f"cannot import: {why}")])


def _queues(files: list[str], in_path_order: bool = False) -> dict[str, list[str]]:
    """Files by package root, largest first (the slowest to analyze, roughly), or in path
    order for an output shown in that order as files finish."""
    queues: dict[str, list[str]] = {}
    for file in sorted(files, key=lambda f: f if in_path_order else (-os.path.getsize(f), f)):
        queues.setdefault(package_root(file), []).append(file)
    return queues


def _neediest(queues: dict[str, list[str]]) -> str | None:
    """The root with the most bytes waiting."""
    waiting = [root for root, queue in queues.items() if queue]
    return max(waiting, key=lambda root: (sum(map(os.path.getsize, queues[root])), root), default=None)


# --- inside a package worker -------------------------------------------------------------


def _exit_after(function, *args) -> None:
    """Run ``function`` in a forked process and leave without running the parent's cleanup
    (atexit handlers, buffered streams, other threads of user code)."""
    status = 0
    try:
        function(*args)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _serve_package(root: str, job: Job, connection) -> None:
    """Import the package once, then fork a fresh child for each file the parent sends."""
    from rflint.source.literals import import_package

    os.setpgid(0, 0)
    _die_with_parent()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)  # the parent handles them by killing us
    sandbox.confine(job.max_memory)
    warnings.simplefilter("ignore")  # formatting torch's warnings costs time; nobody sees them
    if os.path.isdir(root):
        try:
            import_package(root, job.analyzed)
        except BaseException:  # noqa: BLE001  each file's own import meets the error and reports it
            pass
        remember_module_paths()
    gc.freeze()  # the package's modules, as torch's above: not walked again by each file's collections
    package_lines = sandbox.lines_printed()
    connection.send(("ready", root, None))
    while (file := connection.recv()) is not None:
        reader, writer = Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:
            reader.close()
            connection.close()
            _exit_after(_analyze_file, file, job, writer, package_lines)
        writer.close()
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        connection.send(("started", file, pid))
        _relay(reader, connection, pid, file)


def _analyze_file(file: str, job: Job, writer, package_lines: int) -> None:
    os.setpgid(0, 0)
    _die_with_parent()
    sandbox.redirect_output()
    try:
        report = lint_file(file, job, writer.send)
    except BaseException as error:  # noqa: BLE001  e.g. a fix rebuild that tried to download
        report = FileReport(file, diagnostics=[failure("RF902", file, 1, 1, f"cannot analyze: {one_line(error)}")])
    record_inputs(report, job.analyzed)
    report.output_lines = package_lines + sandbox.lines_printed()
    writer.send(("done", file, report))


def _relay(reader, connection, pid: int, file: str) -> None:
    """Pass the child's messages on; if it ends without reporting, say how it ended. A
    process the child started may keep the pipe open, so its exit is watched too."""
    exited = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    try:
        while True:
            if not wait([reader, *([exited] if exited is not None else [])]) or not reader.poll():
                break  # the child exited and left nothing more to read
            try:
                message = reader.recv()
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            connection.send(message)
            if message[0] == "done":
                return
    finally:
        if exited is not None:
            os.close(exited)
        reader.close()
        _, status = os.waitpid(pid, 0)
    connection.send(("lost", file, _ending(status)))


def _ending(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number == signal.SIGKILL and errors.memory_limit:
            return "the process was killed (out of memory?)"
        return f"the process was killed by {signal.Signals(number).name}"
    return "the process exited"


# --- process groups and orphans ----------------------------------------------------------

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36


def _prctl(*args: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(*args, 0, 0, 0)


def _die_with_parent() -> None:
    """If rflint itself is killed (SIGKILL leaves it no time to clean up), its workers go too."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _kill_group(group: int | None) -> None:
    if group:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)


@contextlib.contextmanager
def _reaping_orphans():
    """Make this process the child subreaper while workers run: a process user code
    detaches (double fork, ``setsid``) is re-parented to us instead of to init, and the
    sweep this yields kills and reaps every such process. Children that existed before the
    run (the caller's own) are left alone."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    before = _children()
    terminate = _on_sigterm(_interrupt)

    def sweep(keep=frozenset()) -> None:
        while strays := _children() - before - keep:
            for pid in strays:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    try:
        yield sweep
    finally:
        with _deferring_interrupts():
            sweep()
            _prctl(_PR_SET_CHILD_SUBREAPER, 0)
            _on_sigterm(terminate)


def _on_sigterm(handler):
    """Install ``handler``, returning the previous one (only the main thread may)."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _interrupt(number, frame):
    """SIGTERM (a CI job cancelled, a pre-commit timeout) ends the run as Ctrl-C does."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def _deferring_interrupts():
    """SIGINT and SIGTERM wait until the block ends (then they interrupt as usual)."""
    signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _children() -> set[int]:
    """Our child processes, from /proc: each thread's list of children (whichever thread
    forked them or adopted them), which needs no scan of every process."""
    children: set[int] = set()
    for listing in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        with contextlib.suppress(OSError), open(listing) as handle:
            children.update(map(int, handle.read().split()))
    return children
