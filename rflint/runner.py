"""Schedules files over worker processes, with per-file time limits and crash isolation.

Workers are forked from this process after torch is imported, so each starts in
milliseconds. Files of one package share a worker (they import each other anyway);
standalone files get one each. A worker that dies (``os._exit`` at import) or overruns
``--timeout`` is killed, the file it was on gets an RF9xx diagnostic, and a fresh worker
takes the rest of its files.
"""

from __future__ import annotations

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


def batches(files: list[str], jobs: int) -> list[list[str]]:
    """Group files by package, then split the largest groups until every worker has one."""
    groups: dict[str, list[str]] = {}
    for file in files:
        groups.setdefault(package_root(file), []).append(file)
    result = sorted(groups.values(), key=len, reverse=True)
    while len(result) < jobs and len(result[0]) > 1:
        largest = result.pop(0)
        result += [largest[::2], largest[1::2]]
        result.sort(key=len, reverse=True)
    return result


class _Worker:
    def __init__(self, context, files: list[str], job: Job):
        self.files = list(files)
        receiver, sender = context.Pipe(duplex=False)
        self.connection = receiver
        self.process = context.Process(target=serve, args=(self.files, job, sender), daemon=True)
        self.process.start()
        sender.close()
        self.current: str | None = None
        self.model: str | None = None
        self.since = time.monotonic()

    def remaining(self, reports: dict[str, FileReport]) -> list[str]:
        return [f for f in self.files if f not in reports and f != self.current]


def run(files: list[str], job: Job, jobs: int) -> list[FileReport]:
    """Lint ``files`` on up to ``jobs`` workers; reports come back sorted by file."""
    from . import analysis, discover, literals  # noqa: F401  (imported once here so forked workers start warm)

    context = multiprocessing.get_context("fork")
    pending = batches(files, max(jobs, 1))
    running: list[_Worker] = []
    reports: dict[str, FileReport] = {}
    while pending or running:
        while pending and len(running) < max(jobs, 1):
            running.append(_Worker(context, pending.pop(0), job))
        ready = wait([w.connection for w in running], timeout=0.5)
        for worker in list(running):
            if worker.connection in ready:
                try:
                    kind, file, payload = worker.connection.recv()
                except EOFError:
                    _lost(worker, reports, pending, running, "the process exited")
                    continue
                worker.since = time.monotonic()
                if kind == "start":
                    worker.current, worker.model = file, None
                elif kind == "model":
                    worker.model = payload
                else:
                    reports[file] = payload
                    worker.current = None
                    if all(f in reports for f in worker.files):
                        worker.process.join()
                        running.remove(worker)
            elif time.monotonic() - worker.since > job.timeout:
                worker.process.kill()
                _lost(worker, reports, pending, running, f"timed out after {job.timeout:g} s")
    return [reports[f] for f in sorted(reports)]


def _lost(worker: _Worker, reports, pending, running, why: str) -> None:
    """Blame the file (and model) a dead worker was on; requeue the rest of its files."""
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
    rest = worker.remaining(reports)
    if rest:
        pending.insert(0, rest)
