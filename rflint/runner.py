"""Schedules files over worker processes, with per-file time limits and crash isolation.

Workers are forked from this process after torch is imported, so each starts in
milliseconds. A worker serves one package (whose modules import each other anyway) and
asks for its next file when done, largest first, so two workers share a big package
without one idling; a standalone file gets a fresh worker of its own. A worker that dies
(``os._exit`` at import) or overruns ``--timeout`` is killed, the file it was on gets an
RF9xx diagnostic, and the rest of its package goes to a fresh worker.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from .diagnostics import FileReport
from .worker import failure, serve


@dataclass
class Job:
    """What every worker needs to know; inherited by fork, never re-parsed."""

    analyzed: frozenset[str]
    input_res: tuple[int, ...]
    input_res_auto: bool = False
    timeout: float = 60.0
    search_fixes: bool = False
    max_flops_ratio: float = 5.0  # a fix may multiply a model's FLOPs by at most this (config.DEFAULT_MAX_FLOPS_RATIO)
    explicit: dict[str, list] = field(default_factory=dict)  # file -> configured model entries

    def resolution_for(self, entry) -> tuple[tuple[int, ...] | int, str]:
        if entry.input_res:
            return entry.input_res, "config"
        if self.input_res_auto:
            from .discover import declared_resolution

            declared = declared_resolution(entry)
            if declared:
                return declared, "model"
        return self.input_res, "option"


def package_root(file: str) -> str:
    """The topmost folder of the package holding ``file`` (the file itself if standalone)."""
    folder = Path(file).parent
    if not (folder / "__init__.py").exists():
        return file
    while (folder.parent / "__init__.py").exists():
        folder = folder.parent
    return str(folder)


class _Worker:
    """A process serving the files of one package (or one standalone file), one at a time."""

    def __init__(self, context, root: str, job: Job):
        self.root = root
        self.connection, child = context.Pipe()
        self.process = context.Process(target=serve, args=(job, child), daemon=True)
        self.process.start()
        child.close()
        self.current: str | None = None
        self.model: str | None = None
        self.since = time.monotonic()

    def give(self, file: str | None) -> bool:
        """Send the next file, or None to let the process finish; False if it has died
        since its last report (a thread of user code may call ``os._exit``)."""
        self.current, self.model, self.since = file, None, time.monotonic()
        try:
            self.connection.send(file)
        except OSError:
            return False
        return True


def _feed(worker: _Worker, queues: dict[str, list[str]], running: list[_Worker]) -> None:
    """Give a worker its package's next file; one with none left, or dead, leaves (the
    file then waits in its queue for a fresh worker)."""
    queue = queues[worker.root]
    if queue and worker.give(queue[0]):
        queue.pop(0)
        return
    worker.give(None)
    worker.process.join()
    running.remove(worker)


def _queues(files: list[str]) -> dict[str, list[str]]:
    """Files by package root, largest first (the slowest to analyze, roughly)."""
    queues: dict[str, list[str]] = {}
    for file in sorted(files, key=lambda f: (-os.path.getsize(f), f)):
        queues.setdefault(package_root(file), []).append(file)
    return queues


def run(files: list[str], job: Job, jobs: int) -> list[FileReport]:
    """Lint ``files`` on up to ``jobs`` workers; reports come back sorted by file."""
    from . import analysis, discover, literals  # noqa: F401  (imported once here so forked workers start warm)
    import torch._dynamo  # noqa: F401  meta kernels import it on first use: once here, not once per worker

    gc.freeze()  # torch's million objects: the workers' collections need not walk them again
    context = multiprocessing.get_context("fork")
    queues = _queues(files)
    running: list[_Worker] = []
    reports: dict[str, FileReport] = {}
    while any(queues.values()) or running:
        while len(running) < max(jobs, 1) and (root := _neediest(queues)):
            running.append(_Worker(context, root, job))
            _feed(running[-1], queues, running)
        ready = wait([w.connection for w in running], timeout=0.5)
        for worker in list(running):
            if worker.connection in ready:
                try:
                    kind, file, payload = worker.connection.recv()
                except EOFError:
                    _lost(worker, reports, running, "the process exited")
                    continue
                worker.since = time.monotonic()
                if kind == "model":
                    worker.model = payload
                    continue
                reports[file] = payload
                _feed(worker, queues, running)
            elif time.monotonic() - worker.since > job.timeout:
                worker.process.kill()
                _lost(worker, reports, running, f"timed out after {job.timeout:g} s")
    return [reports[f] for f in sorted(reports)]


def _neediest(queues: dict[str, list[str]]) -> str | None:
    """The root with the most bytes waiting; a standalone file is its own root, so it
    never shares a process with another file."""
    waiting = [root for root, queue in queues.items() if queue]
    return max(waiting, key=lambda root: (sum(map(os.path.getsize, queues[root])), root), default=None)


def _lost(worker: _Worker, reports, running, why: str) -> None:
    """Blame the file (and model) a dead worker was on; its package's other files wait
    in their queue for a fresh worker."""
    worker.process.join()
    running.remove(worker)
    if worker.current is not None:
        report = FileReport(worker.current)
        if worker.model is None:
            report.diagnostics.append(failure("RF901", worker.current, 1, 1, f"cannot import: {why}"))
        else:
            report.diagnostics.append(
                failure("RF902", worker.current, 1, 1, f"cannot build {worker.model}: {why}", (worker.model,))
            )
        reports[worker.current] = report
