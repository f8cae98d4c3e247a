"""One rflint invocation: settings, files, the cache, workers, fixes and the report."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostic, ModelReport


@functools.lru_cache(maxsize=256)
def _lines(file: str) -> tuple[str, ...]:
    """A file's lines as the noqa scanner wants them (split on newlines only)."""
    try:
        with open(file, encoding="utf-8", errors="replace") as handle:
            return tuple(handle.read().split("\n"))
    except OSError:
        return ()


def entry_file(entry) -> str:
    """The file a configured model lives in; ``pkg.module:factory`` is found on sys.path."""
    if entry.file:
        return os.path.realpath(entry.file)
    import importlib.util

    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.origin:
        raise ValueError(f"configured model '{entry.target}': module '{entry.module}' not found")
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


def broadcast(res):
    """A square resolution applies to every axis, so Conv1d and Conv3d models get it too."""
    return res[0] if isinstance(res, tuple) and len(set(res)) == 1 else res


MAX_FIX_PASSES = 10
RESOLUTION_SOURCES = {"option": "command line or config", "config": "model's [tool.rflint] entry",
                      "model": "model's declared resolution"}


@dataclass
class Outcome:
    models: list[ModelReport]
    diagnostics: list[Diagnostic]
    changed_files: list[str] = field(default_factory=list)
    fixes_applied: list[Diagnostic] = field(default_factory=list)  # RF003 diagnostics whose fix was applied
    diff: str = ""
    notes: list[str] = field(default_factory=list)  # --verbose lines


@dataclass
class Session:
    args: object
    cwd: Path
    settings: object
    files: list[str]
    warnings: list[str] = field(default_factory=list)  # printed on stderr
    hashes: dict[str, str] = field(default_factory=dict)  # file -> sha256 when last analysed
    analyzed_now: list[str] = field(default_factory=list)  # files the last analyze() did not take from the cache

    @classmethod
    def from_args(cls, args, cwd: Path) -> "Session":
        from .config import find_config, load_settings
        from .files import discover

        paths = args.paths or ["."]
        config = None if args.isolated else (Path(args.config) if args.config else find_config(Path(paths[0]).resolve()))
        cli = {key: value for key, value in {
            "input-res": args.input_res,
            "select": args.select.split(",") if args.select else None,
            "ignore": args.ignore.split(",") if args.ignore else None,
            "timeout": args.timeout,
        }.items() if value is not None}
        settings = load_settings(config, cli)
        files, errors = discover(paths, settings, args.force_exclude)
        files = [str(f) for f in files] + [f for f in _configured_files(settings) if f not in map(str, files)]
        return cls(args, cwd, settings, files, warnings=list(errors))

    def job(self):
        from .runner import Job

        return Job(
            analyzed=frozenset(os.path.realpath(f) for f in self.files),
            input_res=broadcast(self.settings.input_res or 224),
            input_res_auto=self.settings.input_res_auto,
            timeout=self.settings.timeout,
            search_fixes=self.wants_fixes(),
            explicit=_explicit_models(self.settings),
        )

    def cache(self, job):
        """The result cache, keyed on everything that changes an analysis (not on rule
        selection or noqa: those are applied afterwards)."""
        from .cache import Cache, fingerprint

        if self.args.no_cache or os.environ.get("RFLINT_NO_CACHE"):
            return None
        options = {"input_res": job.input_res, "input_res_auto": job.input_res_auto,
                   "search_fixes": job.search_fixes, "explicit": job.explicit}
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
        from .file_kinds import lint_in_process, needs_worker

        imported = [f for f in todo if needs_worker(f)]  # model files run user code: in workers (torch)
        fresh = lint_in_process([f for f in todo if not needs_worker(f)], job)
        if imported:
            from .runner import run

            fresh += run(imported, job, self.args.jobs)
        for report in fresh:
            if cache:
                cache.put(report)
        self.warnings += cache.warnings if cache else []
        return sorted([r for r in cached.values() if r] + fresh, key=lambda r: r.file)

    def run(self) -> Outcome:
        """Lint; with --fix apply verified fixes and re-lint until nothing changes (ruff's
        loop: one stride moves every receptive field downstream); with --diff only show them."""
        outcome = self.lint()
        if not (self.args.fix or self.args.diff):
            return outcome
        applied: list[Diagnostic] = []
        originals: dict[str, str] = {}
        for _ in range(MAX_FIX_PASSES):
            chosen = self.fixes_to_apply(outcome.diagnostics)
            new_texts = self.rewrite(chosen)
            if not new_texts:
                break
            if self.args.diff:
                outcome.diff = "".join(self.diff(file, text) for file, text in sorted(new_texts.items()))
                outcome.changed_files = sorted(new_texts)
                outcome.fixes_applied = chosen
                return outcome
            from .rewrite import write_atomically

            for file, text in new_texts.items():
                originals.setdefault(file, Path(file).read_text())
                write_atomically(file, text, self.hashes[file])
            applied += chosen
            outcome = self.lint()
        outcome.fixes_applied = applied
        outcome.changed_files = sorted(f for f, text in originals.items() if Path(f).read_text() != text)
        return outcome

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
            if models & set(fix.models) or edits & positions:
                continue
            chosen.append(d)
            models |= set(fix.models)
            edits |= positions
        return chosen

    def rewrite(self, chosen: list[Diagnostic]) -> dict[str, str]:
        """New text per file for the chosen fixes (nothing is written here). A file that
        changed since it was analysed, or an edit that no longer fits, is left alone."""
        from .rewrite import RewriteError, apply_edits

        by_file: dict[str, set] = {}
        for d in chosen:
            for edit in d.fix.edits:
                by_file.setdefault(edit.file, set()).add(edit)
        texts = {}
        for file, edits in sorted(by_file.items()):
            try:
                texts[file] = apply_edits(file, sorted(edits, key=lambda e: (e.line, e.column)), self.hashes.get(file, ""))
            except (RewriteError, OSError) as error:
                self.warnings.append(f"not fixing {_relative(file, self.cwd)}: {error}")
        return texts

    def diff(self, file: str, new_text: str) -> str:
        from .rewrite import unified_diff

        return unified_diff(_relative(file, self.cwd), Path(file).read_text(), new_text)

    def lint(self) -> Outcome:
        from .lint import collect

        reports = self.analyze()
        self.hashes = {f: h for r in reports for f, h in r.hashes.items()}
        models, diagnostics = collect(reports)
        diagnostics = self.filter(diagnostics, models)
        notes = [f"{_relative(r.file, self.cwd)}: {s}" for r in reports for s in r.skipped]
        notes += [f"{_relative(r.file, self.cwd)}: {'analyzed' if r.file in self.analyzed_now else 'from the cache'}"
                  for r in reports]
        notes += [
            f"{_relative(m.file, self.cwd)}: {m.name} analyzed at {'x'.join(map(str, m.input_res))}"
            f" (input resolution from the {RESOLUTION_SOURCES[m.input_res_source]})"
            for m in models
        ]
        return Outcome(models, diagnostics, notes=notes)

    def wants_fixes(self) -> bool:
        a = self.args
        return a.fix or a.diff or a.show_fixes or a.format in ("json", "full", "sarif")

    def filter(self, diagnostics: list[Diagnostic], models: list[ModelReport]) -> list[Diagnostic]:
        """Drop diagnostics of unselected rules and those suppressed by noqa comments.

        ``# noqa`` applies on the diagnostic's line, ``# rflint: noqa`` on a model's def or
        class line covers every diagnostic of that model; graph files have ``"noqa"`` fields.
        """
        from .config import is_selected
        from .file_kinds import suppressed
        from .noqa import covers, model_suppressions

        by_model = {m.name: model_suppressions(_lines(m.file), m.line) for m in models}
        return [
            d for d in diagnostics
            if is_selected(d.code, self.settings, Path(d.file))
            and not suppressed(d, _lines(d.file))
            and not all(covers(by_model.get(name, frozenset()), d.code) for name in d.models or ("",))
        ]

    def show_fixes(self, outcome: Outcome) -> str:
        from .report import show_fixes

        proposed = [] if self.args.fix else outcome.diagnostics
        return show_fixes.render(self.summary(outcome), outcome.fixes_applied if self.args.fix else [], proposed)

    def render(self, outcome: Outcome) -> str:
        from .report import render, render_statistics

        run = self.summary(outcome)
        if self.args.statistics:
            return render_statistics(run, as_json=self.args.format == "json")
        return render(self.args.format or "concise", run)

    def summary(self, outcome: Outcome):
        from .report import RunSummary

        return RunSummary(
            diagnostics=outcome.diagnostics,
            models=outcome.models,
            cwd=str(self.cwd),
            fix_mode="unsafe" if self.args.unsafe_fixes else "safe",
            fixed=len(outcome.fixes_applied),
            quiet=self.args.quiet,
        )

    def clean_cache(self) -> None:
        from .cache import clean

        clean(self.cache_dir)
