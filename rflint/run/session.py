"""One rflint invocation: settings, files, the cache, workers, fixes and the report."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rflint.core.resolution import broadcast
from rflint.run.options import Job

if TYPE_CHECKING:  # imported where used: a replayed warm run needs none of them
    from rflint.core.diagnostics import Diagnostic, ModelReport


def entry_file(entry, role: str = "configured model") -> str:
    """The file a configured model lives in; ``pkg.module:factory`` is found on sys.path.
    ``role`` names the model in the error (a spec on the command line is not configured)."""
    if entry.file:
        return os.path.realpath(entry.file)
    import importlib.util

    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.origin:
        raise ValueError(f"{role} '{entry.target}': module '{entry.module}' not found")
    return os.path.realpath(spec.origin)


def _configured_files(settings) -> list[str]:
    return sorted({entry_file(entry) for entry in settings.models})


def _explicit_models(settings) -> dict[str, list]:
    """Configured model entries, by the file they live in."""
    explicit: dict[str, list] = {}
    for entry in settings.models:
        explicit.setdefault(entry_file(entry), []).append(entry)
    return explicit


def _relative(file: str, cwd: Path) -> str:
    return os.path.relpath(file, cwd) if file.startswith(str(cwd) + os.sep) else file


def _read_bytes(file: str) -> bytes:
    with open(file, "rb") as handle:
        return handle.read()


def _identities(diagnostics: list[Diagnostic]) -> set[tuple]:
    """What makes a diagnostic the same one after a fix (its message's figures may change)."""
    return {(d.code, d.file, d.line, d.column, d.models) for d in diagnostics}


def _after_file(error: BaseException, file: str) -> str:
    """The reason of a RewriteError or OSError without the file name it starts with."""
    text = str(error.strerror if isinstance(error, OSError) and error.strerror else error)
    for prefix in (f"{file}: ", f"{os.path.realpath(file)}: "):
        text = text.removeprefix(prefix)
    return text


def default_max_memory() -> int:
    """Half the machine's memory: one runaway worker cannot take the machine down."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


MAX_FIX_PASSES = 10
RESOLUTION_SOURCES = {"option": "command line or config", "config": "model's [tool.rflint] entry",
                      "model": "model's declared resolution"}


@dataclass
class Outcome:
    models: list[ModelReport]
    diagnostics: list[Diagnostic]
    changed_files: list[str] = field(default_factory=list)
    fixes_applied: list[Diagnostic] = field(default_factory=list)  # RF003 diagnostics whose fix was applied
    diff: bytes = b""
    fixed: int = 0  # diagnostics of the first lint that the fixes made disappear
    notes: list[str] = field(default_factory=list)  # --verbose lines
    skipped: int = 0  # candidates that are not models to lint (listed in ``notes``)


@dataclass
class Session:
    args: object
    cwd: Path
    settings: object
    files: list[str]
    warnings: list[str] = field(default_factory=list)  # printed on stderr
    infos: list[str] = field(default_factory=list)  # printed on stderr before the run (paths skipped)
    hashes: dict[str, str] = field(default_factory=dict)  # file -> sha256 when last analysed
    analyzed_now: list[str] = field(default_factory=list)  # files the last analyze() did not take from the cache
    failed_writes: int = 0  # files --fix could not write (each has a warning): the run exits 1
    refused: set[str] = field(default_factory=set)  # files not to try again in a later fix pass
    streamed: "Streamer | None" = None  # shows the diagnostics of each file as it finishes
    last_cache: object = None  # the Cache of the last analyze(), which knows what it reused
    run_key: str | None = None  # what identifies this run's output besides its files' inputs (``replay``)

    @classmethod
    def from_args(cls, args, cwd: Path) -> "Session":
        from rflint.run.config import find_config, load_settings
        from rflint.run.files import discover

        paths = args.paths or ["."]
        config = None if args.isolated else (Path(args.config) if args.config else find_config(Path(paths[0]).resolve()))
        cli = {key: value for key, value in {
            "input-res": args.input_res,
            "select": args.select.split(",") if args.select else None,
            "ignore": args.ignore.split(",") if args.ignore else None,
            "timeout": args.timeout,
            "max-flops-ratio": args.max_flops_ratio,
            "max-memory": args.max_memory,
        }.items() if value is not None}
        settings = load_settings(config, cli)
        infos: list[str] = []
        files, errors = discover(paths, settings, args.force_exclude, infos)
        files = [str(f) for f in files] + [f for f in _configured_files(settings) if f not in map(str, files)]
        return cls(args, cwd, settings, files, warnings=list(errors), infos=infos)

    @functools.cached_property
    def analyzed(self) -> frozenset[str]:
        from rflint.run.files import real_paths

        return frozenset(real_paths(self.files).values())

    def job(self) -> Job:
        return Job(
            analyzed=self.analyzed,
            input_res=broadcast(self.settings.input_res or 224),
            input_res_auto=self.settings.input_res_auto,
            timeout=self.settings.timeout,
            search_fixes=self.wants_fixes(),
            max_flops_ratio=self.settings.max_flops_ratio,
            explicit=_explicit_models(self.settings),
            max_memory=self.settings.max_memory or default_max_memory(),
        )

    def cache(self, job):
        """The result cache, keyed on everything that changes an analysis (not on rule
        selection or noqa: those are applied afterwards)."""
        from rflint.run.cache import Cache, fingerprint

        if self.args.no_cache or os.environ.get("RFLINT_NO_CACHE"):
            return None
        options = {"input_res": job.input_res, "input_res_auto": job.input_res_auto,
                   "search_fixes": job.search_fixes, "explicit": job.explicit}
        if job.search_fixes:
            options["max_flops_ratio"] = job.max_flops_ratio
        return Cache(self.cache_dir, fingerprint(options), job.analyzed)

    @property
    def cache_dir(self) -> Path:
        return Path(self.args.cache_dir) if self.args.cache_dir else self.cwd / ".rflint_cache"

    def analyze(self) -> list:
        """A FileReport per file: from the cache where nothing changed, else from its front
        end (worker processes for model files, this process for graph files)."""
        job = self.job()
        cache = self.cache(job)
        files = sorted(job.analyzed)
        cached = {f: cache.get(f) for f in files} if cache else {}
        todo = [f for f in files if cached.get(f) is None]
        self.analyzed_now = todo
        from rflint.run.file_kinds import lint_in_process, needs_worker

        imported = [f for f in todo if needs_worker(f)]  # model files run user code: in workers (torch)
        show = self.streamed.expect(files) if self.streamed else None
        try:
            for report in [r for r in cached.values() if r] if show else []:
                show(report)
            fresh = lint_in_process([f for f in todo if not needs_worker(f)], job)
            for report in fresh if show else []:
                show(report)
            if imported:
                from rflint.run.runner import run

                fresh += run(imported, job, self.args.jobs, show)
        except KeyboardInterrupt:
            if self.streamed:
                self.streamed.show_finished()  # what an interrupted run found
            raise
        for report in fresh:
            if cache:
                cache.put(report)
        self.warnings += cache.finish() if cache else []
        self.last_cache = cache
        return sorted([r for r in cached.values() if r] + fresh, key=lambda r: r.file)

    def replay(self) -> tuple[list[tuple[int, bytes]], int] | None:
        """What the last identical run wrote and its exit status, if it took every file from
        the cache and nothing any of their results depended on has changed since: a warm
        run then imports neither the rules nor the reports. Identical: same options, settings,
        working directory and files (``run_key``), a lint that only prints."""
        a = self.args
        cache = self.cache(self.job())
        if cache is None or a.fix or a.diff or a.output_file or self.removed_temporaries:
            return None
        from rflint.run.cache import fingerprint

        self.run_key = fingerprint({"analysis": cache.fingerprint, "args": vars(a), "cwd": str(self.cwd),
                                    "settings": self.settings, "infos": self.infos, "warnings": self.warnings})
        replayed = cache.replay(self.run_key, sorted(self.analyzed))
        cache.finish()  # keeps the installed versions it looked up; its warnings are the real run's to give
        return replayed

    def remember(self, output: list[tuple[int, bytes]], status: int) -> None:
        """Keep a run's output for ``replay`` if it was replayable and took every file from the cache."""
        if self.run_key is not None and self.last_cache is not None and not self.analyzed_now:
            self.last_cache.record_run(self.run_key, sorted(self.analyzed), output, status)

    @functools.cached_property
    def removed_temporaries(self) -> list[str]:
        """The temporary files a killed --fix left beside the analyzed files, removed."""
        from rflint.fix.rewrite import remove_stale_temporaries

        return remove_stale_temporaries(sorted({os.path.dirname(f) for f in self.analyzed}))

    def run(self) -> Outcome:
        """Lint; with --fix apply verified fixes and re-lint until nothing changes (ruff's
        loop: one stride moves every receptive field downstream); with --diff only show them."""
        removed = self.removed_temporaries
        outcome = self.lint()
        outcome.notes += [f"removed {_relative(f, self.cwd)}, left by an interrupted --fix" for f in removed]
        if not (self.args.fix or self.args.diff):
            return outcome
        before = outcome.diagnostics
        applied: list[Diagnostic] = []
        originals: dict[str, bytes] = {}
        for _ in range(MAX_FIX_PASSES):
            chosen, new_texts = self.rewrite(self.fixes_to_apply(outcome.diagnostics))
            if not new_texts:
                break
            if self.args.diff:
                outcome.diff = b"".join(self.diff(file, text) for file, text in sorted(new_texts.items()))
                outcome.changed_files = sorted(new_texts)
                outcome.fixes_applied = chosen
                return outcome
            written = self.write(new_texts, originals)
            applied += [d for d in chosen if {e.file for e in d.fix.edits} <= written]
            if not written:
                break
            outcome = self.lint()
        outcome.fixes_applied = applied
        outcome.fixed = len(_identities(before) - _identities(outcome.diagnostics))
        outcome.changed_files = sorted(f for f, data in originals.items() if _read_bytes(f) != data)
        return outcome

    def write(self, new_texts: dict[str, str], originals: dict[str, bytes]) -> set[str]:
        """Write each file's new text; a file that cannot be written as the user left it
        is one warning line, and the others are still written. Returns the files written."""
        from rflint.fix.rewrite import RewriteError, write_atomically

        written = set()
        for file, text in sorted(new_texts.items()):
            try:
                original = _read_bytes(file)
                write_atomically(file, text, self.hashes[file])
            except (RewriteError, OSError) as error:
                self.warnings.append(f"not fixing {_relative(file, self.cwd)}: {_after_file(error, file)}")
                self.failed_writes += 1
                self.refused.add(file)
                continue
            originals.setdefault(file, original)
            written.add(file)
        return written

    def fixes_to_apply(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        """Applicable fixes that touch disjoint models and literals: each was verified alone,
        so two fixes moving the same model wait for the next pass."""
        allowed = {"safe", "unsafe"} if self.args.unsafe_fixes else {"safe"}
        chosen, models, edits = [], set(), set()
        for d in diagnostics:
            fix = d.fix
            if fix is None or fix.applicability not in allowed or not fix.edits:
                continue
            positions = {(e.file, e.line, e.column) for e in fix.edits}
            changed = set(zip(fix.model_files or (d.file,) * len(fix.models), fix.models))
            if models & changed or edits & positions:
                continue
            chosen.append(d)
            models |= changed
            edits |= positions
        return chosen

    def rewrite(self, chosen: list[Diagnostic]) -> tuple[list[Diagnostic], dict[str, str]]:
        """The fixes that can be applied and the new text per file (nothing is written here).

        A file that changed since it was analysed, that --fix may not write (read-only, hard
        links), or whose edit no longer fits is left alone with one warning line, and so is
        every fix touching it: a fix spanning two files is applied whole or not at all."""
        from rflint.fix.rewrite import RewriteError, apply_edits, refusal

        while True:
            chosen = [d for d in chosen if not {e.file for e in d.fix.edits} & self.refused]
            by_file: dict[str, set] = {}
            for d in chosen:
                for edit in d.fix.edits:
                    by_file.setdefault(edit.file, set()).add(edit)
            texts = {}
            for file, edits in sorted(by_file.items()):
                expected = self.hashes.get(file, "")
                try:
                    reason = None if self.args.diff else refusal(file, expected)
                    if reason is None:
                        texts[file] = apply_edits(file, sorted(edits, key=lambda e: (e.line, e.column)), expected)
                except (RewriteError, OSError) as error:
                    reason = _after_file(error, file)
                if reason is not None:
                    self.warnings.append(f"not fixing {_relative(file, self.cwd)}: {reason}")
                    self.failed_writes += not self.args.diff
                    self.refused.add(file)
            if texts.keys() == by_file.keys():
                return chosen, texts

    def diff(self, file: str, new_text: str) -> bytes:
        from rflint.fix.rewrite import new_bytes, unified_diff

        return unified_diff(_relative(file, self.cwd), _read_bytes(file), new_bytes(file, new_text))

    def lint(self) -> Outcome:
        from rflint.core.diagnostics import SKIPPED
        from rflint.core.lint import collect

        reports = self.analyze()
        self.hashes = {f: h for r in reports for f, h in r.hashes.items()}
        models, diagnostics = collect(reports)
        diagnostics = self.filter(diagnostics)
        notes = [note for r in reports for note in self.file_notes(r, models)]
        not_models = [m for r in reports for m in r.models if m.status == "skipped"]  # blocks too
        notes += [f"{_relative(m.file, self.cwd)}: {SKIPPED}{m.name}: {m.skip_reason}" for m in not_models]
        skipped = sum(s.startswith(SKIPPED) for r in reports for s in r.skipped) + len(not_models)
        notes += [f"{_relative(r.file, self.cwd)}: its import and builds printed {r.output_lines}"
                  f" line{'s' * (r.output_lines != 1)} (not shown)" for r in reports if r.output_lines]
        notes += [
            f"{_relative(m.file, self.cwd)}: {m.name} analyzed at {'x'.join(map(str, m.input_res))}"
            f" (input resolution from the {RESOLUTION_SOURCES[m.input_res_source]})"
            for m in models if m.status != "skipped"
        ]
        return Outcome(models, diagnostics, notes=notes, skipped=skipped)

    def file_notes(self, report, models: list[ModelReport]) -> list[str]:
        """--verbose: one status line per file (where its report came from, what it holds),
        then a line per candidate that was skipped."""
        path = _relative(report.file, self.cwd)
        how = "analyzed" if report.file in self.analyzed_now else "from the cache"
        found = sum(any(m is model for m in models) for model in report.models if model.status != "skipped")
        what = ("cannot import" if report.diagnostics and not report.models
                else f"{found} model{'s' * (found != 1)}" if found else "no models found")
        return [f"{path}: {how} ({what})", *(f"{path}: {skipped}" for skipped in report.skipped)]

    def wants_fixes(self) -> bool:
        """The formats that show fixes search them; the default concise lint does not, since
        verifying a fix still costs a rebuild of every model that reads the literal (about
        4x the plain lint on torchvision's models/): ``--show-fixes`` adds ``[*]`` to it."""
        a = self.args
        return a.fix or a.diff or a.show_fixes or a.format in ("json", "full", "sarif")

    def filter(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        """Drop diagnostics of unselected rules and those the file's own suppressions cover:
        a ``# noqa`` on their line, a file-level ``# rflint: noqa``, a graph file's ``"noqa"``
        fields (model-level directives: ``lint.collect``)."""
        from rflint.run.config import is_selected
        from rflint.run.file_kinds import suppressed
        from rflint.core.noqa import read_lines

        return [d for d in diagnostics
                if is_selected(d.code, self.settings, Path(d.file)) and not suppressed(d, read_lines(d.file))]

    def show_fixes(self, outcome: Outcome) -> str:
        from rflint.report import show_fixes

        proposed = [] if self.args.fix else outcome.diagnostics
        return show_fixes.render(self.summary(outcome), outcome.fixes_applied if self.args.fix else [], proposed)

    def render(self, outcome: Outcome) -> str:
        from rflint.report import render, render_statistics

        run = self.summary(outcome)
        if self.args.statistics:
            return render_statistics(run, as_json=self.args.format == "json")
        return render(self.args.format or "concise", run)

    def summary(self, outcome: Outcome):
        from rflint.report.summary import RunSummary

        return RunSummary(
            diagnostics=outcome.diagnostics,
            models=outcome.models,
            cwd=str(self.cwd),
            fix_mode="unsafe" if self.args.unsafe_fixes else "safe",
            fixed=outcome.fixed,
            quiet=self.args.quiet,
            skipped=outcome.skipped,
        )

    def clean_cache(self) -> None:
        from rflint.run.cache import clean

        clean(self.cache_dir)


def _identity(diagnostic: Diagnostic) -> tuple:
    d = diagnostic
    return d.code, d.file, d.line, d.column, d.models, d.message


class Streamer:
    """The concise and full output as files finish: each file's diagnostics (those of its
    own report, selected and suppressed as the run's are) once it and every file before
    it in path order are done, then at the end whatever the run's cross-file view adds and
    the summary. In path order, a finished run prints exactly what sorting at the end
    printed, whatever order the workers finish in; an interrupted one shows every file
    that finished (see ``show_finished``)."""

    def __init__(self, session: Session, write):
        self.session = session
        self.write = write  # text -> None, flushed
        self.waiting: list[str] = []  # files not shown yet, in path order
        self.finished: dict[str, object] = {}  # file -> report, waiting for an earlier file
        self.shown: set[tuple] = set()

    def expect(self, files: list[str]):
        """Start a run over ``files``; returns what takes each file's report."""
        self.waiting, self.finished = sorted(files), {}
        return self.finish

    def finish(self, report) -> None:
        self.finished[report.file] = report
        while self.waiting and self.waiting[0] in self.finished:
            self.show(self.finished.pop(self.waiting.pop(0)))

    def show_finished(self) -> None:
        """Every finished file not shown yet (the run was interrupted: no earlier file will come)."""
        for file in sorted(self.finished):
            self.show(self.finished.pop(file))

    def show(self, report) -> None:
        from rflint.core.lint import collect
        from rflint.report import STREAMED

        models, diagnostics = collect([report])
        diagnostics = self.session.filter(diagnostics)
        if diagnostics:
            self.shown |= set(map(_identity, diagnostics))
            show_diagnostics, _ = STREAMED[self.session.args.format or "concise"]
            self.write(show_diagnostics(self.session.summary(Outcome(models, diagnostics)), diagnostics))

    def rest(self, outcome: Outcome) -> str:
        """The diagnostics the per-file view did not show (a line shared by models of
        several files, merged), then the summary."""
        from rflint.report import STREAMED

        show_diagnostics, end = STREAMED[self.session.args.format or "concise"]
        run = self.session.summary(outcome)
        return show_diagnostics(run, [d for d in outcome.diagnostics if _identity(d) not in self.shown]) + end(run)
