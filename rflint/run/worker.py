"""Runs inside a worker process: import files, find their models, analyze each.

Everything a file does at import time stays in this process; the parent only receives
plain ``FileReport`` objects. Messages to the parent say what is running, so that a
timeout or a crash can be pinned on the right file and model, and carry each model's
report as soon as it is analysed, so that such an end loses only the models not finished.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import hashlib
import io
import os
import sys
import sysconfig
import time
import tokenize
import types

from rflint.about import PACKAGE_DIR
from rflint.frontends.keras import live
from rflint.run import sandbox
from rflint.core.diagnostics import FileReport, ModelReport, failure
from rflint.core.errors import NetworkBlocked, one_line

USER_CODE_ERRORS = (Exception, SystemExit, NetworkBlocked)  # what an import or a build may raise


def read_source(file: str) -> str:
    """The file's text in its declared encoding (PEP 263; UTF-8 by default)."""
    with open(file, "rb") as handle:
        data = handle.read()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:  # undecodable first lines: report the byte below
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise SyntaxError(f"not valid {encoding}: byte {data[error.start]:#x} at offset {error.start}") from None


def lint_file(file: str, job, send) -> FileReport:
    """Import ``file`` with literal provenance, then build and analyze each of its models.

    ``send`` tells the parent the models found, the one being analysed and each one's
    report when it is done (trimmed, as the final report is)."""
    from rflint.frontends.discover import with_configured
    from rflint.source.literals import import_file, imported_sha256, instrumented_imports, pin_imported_sources

    fixes_due = time.monotonic() + job.timeout - reporting_margin(job.timeout)
    pin_imported_sources()
    report = FileReport(file)
    try:
        source = read_source(file)
        frontend = front_end(file, source)
        module = import_file(file, job.analyzed, fresh=False)
        entries, report.skipped = frontend.find_models(module, file, source)
        entries = with_configured(entries, module, file, source, job.explicit.get(file, ()), report.skipped)
    except USER_CODE_ERRORS as error:
        line = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
        report.diagnostics.append(failure("RF901", file, line or 1, 1, f"cannot import: {one_line(error)}"))
        return report
    send(("found", file, (len(entries), report.skipped)))
    with instrumented_imports(job.analyzed):  # models may import analyzed files lazily
        for entry in entries:
            send(("model", file, entry.name))
            report.models.append(model := frontend.analyze_entry(entry, job))
            send(("analysed", file, _trimmed(model)))
    report.imported_files = local_imports(job.analyzed)
    if job.search_fixes:
        attach_fixes(entries, report, job, send, frontend.rebuilder, Deadline(fixes_due))
    # The bytes that were imported (fix trials included): --fix refuses a file that differs.
    report.hashes = {f: imported_sha256(f) or _sha256(f) for f in report.imported_files}
    for model in report.models:
        model.keep_reported_layers()
    return report


def front_end(file: str, source: str):
    """What finds, analyses and rebuilds the models of a file: the Keras front end for a
    file that imports keras (only then is keras imported), else torch's."""
    if live.imports_keras(source):
        return KerasFrontEnd(file, source)
    from rflint.frontends.discover import find_models

    return types.SimpleNamespace(find_models=find_models, analyze_entry=analyze_entry, rebuilder=None)


class KerasFrontEnd:
    """The worker's front end for a file that imports keras (see ``front_end``)."""

    def __init__(self, file: str, source: str):
        from rflint.fix.keras import KerasRebuilder

        self.keras = live.keras_for(file, source)
        self.rebuilder = KerasRebuilder(self.keras)

    def find_models(self, module, file: str, source: str):
        return live.find_keras_models(module, file, source, self.keras)

    def analyze_entry(self, entry, job) -> ModelReport:
        return live.analyze_keras_entry(entry, job, self.keras)


def _trimmed(model: ModelReport) -> ModelReport:
    """A copy of ``model`` small enough to send at once; the fix search needs all its layers."""
    copied = copy.copy(model)
    copied.keep_reported_layers()
    return copied


def reporting_margin(timeout: float) -> float:
    """How long before the file's time is up the fix search stops, for the report to be
    finished and sent: 5 % of ``--timeout``, at least 1 s (at most half of it)."""
    return min(max(1.0, 0.05 * timeout), timeout / 2)


def fix_search_stopped(timeout: float) -> str:
    """The note of a model whose fix search the file's time cut short."""
    return (f"no fix: the fix search stopped when the file's time (--timeout {timeout:g} s) ran out;"
            " a larger --timeout lets it finish")


class Deadline:
    """Stops the fix search (``OutOfTime``) before a rebuild that would not end by ``due``:
    a rebuild is expected to take as long as the longest time between two so far."""

    def __init__(self, due: float):
        self.due = due
        self.last: float | None = None
        self.longest = 0.0

    def check(self) -> None:
        from rflint.fix.search import OutOfTime

        now = time.monotonic()
        if self.last is not None:
            self.longest = max(self.longest, now - self.last)
        self.last = now
        if now + self.longest > self.due:
            raise OutOfTime


def attach_fixes(entries, report: FileReport, job, send, rebuilder=None, deadline: Deadline | None = None) -> None:
    """Search fixes for the file's models that are not fully utilized, checking each
    candidate literal against every model that reads it (EfficientNet B0..B7 share a table;
    a model that built but could not be analysed must not change either); ``rebuilder``
    rebuilds them for trials (torch's by default). Past ``deadline``, the models not yet
    fixed get a note instead of a fix and the report is incomplete (not cached)."""
    from rflint.fix.search import OutOfTime, UNCHANGED, measured_as_built, search_fixes, without_building_blocks

    # Each trial ends with a full collection (a re-imported package is cyclic garbage): what
    # exists now lives until this process exits, so the collections need not walk it again.
    gc.collect()
    gc.freeze()
    model_of = {id(entry): model for entry, model in zip(entries, report.models)}
    built = [(e, m) for e, m in zip(entries, report.models) if m.result is not None or (m.error or "").startswith("RF903")]
    known = without_building_blocks([(e, m.result, m.component_types) for e, m in built])
    trials: dict = {}

    def progress(what: str) -> None:
        if deadline is not None:
            deadline.check()
        send(("model", report.file, f"{what} (fix search)"))  # a timeout names the rebuild

    with contextlib.suppress(OutOfTime):  # then the search below stops at once too
        for entry, result in known:
            if result is not None and result.model is not None:
                progress(f"{entry.name} unchanged (its FLOPs)")
                trials[entry.file, entry.name, UNCHANGED] = measured_as_built(result.model, result)
    for entry, result in known:
        if result is not None and not result.fully_utilized():
            model = model_of[id(entry)]
            if not report.complete:
                model.fix_note = fix_search_stopped(job.timeout)
                continue
            siblings = [s for s in known if s[0] is not entry]
            try:
                progress(entry.name)
                model.fixes = search_fixes(entry, result, job, siblings, trials, progress, rebuilder)
            except OutOfTime:
                model.fix_note = fix_search_stopped(job.timeout)
                report.complete = False


def _sha256(file: str) -> str:
    with open(file, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


_realpath = functools.lru_cache(maxsize=None)(os.path.realpath)  # called per file on every module


def _module_files() -> set[str]:
    """The real paths of the files of the modules imported so far."""
    return {_realpath(f) for m in list(sys.modules.values()) if os.path.isabs(f := getattr(m, "__file__", None) or "")}


def remember_module_paths() -> None:
    """Resolve the paths of the modules imported so far, so that the processes forked
    from here inherit them instead of resolving them again for each file (0.5 s for the
    2,000 modules of torch and torchvision)."""
    _module_files()


@functools.cache
def _standard_folders() -> tuple[str, ...]:
    return tuple({os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib")})


@functools.cache
def _installed_folders() -> tuple[str, ...]:
    """Where pip installs: this environment's site-packages and any other on ``sys.path``
    (a ``.pth`` file can add another environment's)."""
    folders = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    folders |= {entry for entry in sys.path if os.path.basename(entry) in ("site-packages", "dist-packages")}
    return tuple({os.path.realpath(folder) + os.sep for folder in folders})


def _user_editable(file: str, analyzed: frozenset[str]) -> bool:
    """Analyzed, or outside the standard library, the installed packages and rflint."""
    return file in analyzed or not file.startswith((*_standard_folders(), *_installed_folders(), PACKAGE_DIR))


def local_imports(analyzed: frozenset[str]) -> tuple[str, ...]:
    """The files this process imported that a user may edit (the cache keys on their hashes)."""
    return tuple(sorted(f for f in _module_files() if f.endswith(".py") and _user_editable(f, analyzed)))


def record_inputs(report: FileReport, analyzed: frozenset[str]) -> None:
    """What else the import and the builds depended on, for the cache key: the other files
    they opened for reading (configs, data), the environment variables they looked up, and
    the installed packages they imported (by top-level name; the cache keys on versions)."""
    known = {report.file, *report.imported_files}
    report.read_files = tuple(sorted(
        real for f in sandbox.files_read
        if (real := _realpath(f)) not in known and _user_editable(real, analyzed) and not os.path.isdir(real)
    ))
    report.environment = dict(sorted(sandbox.environment_read.items()))
    installed = _installed_folders()
    top_levels = set()
    for file in _module_files() | set(map(_realpath, sandbox.files_read)):
        prefix = next((p for p in installed if file.startswith(p)), None)
        if prefix is not None:
            top_levels.add(file[len(prefix):].split(os.sep)[0].split(".")[0])
    report.installed = tuple(sorted(name for name in top_levels if name.isidentifier()))


def analyze_entry(entry, job) -> ModelReport:
    """Build and analyze one model; a failure becomes the model's error, not a crash."""
    from rflint.frontends.torch.analysis import CaptureError
    from rflint.frontends.discover import NotAModel, analyze_model

    input_res, source = job.resolution_for(entry)
    shown = (input_res, input_res) if isinstance(input_res, int) else input_res  # until the model says its axes
    model = ModelReport(entry.name, entry.file, entry.line, entry.column, shown, entry.kind,
                        type_name=entry.type_name, input_res_source=source, configured=entry.configured)
    try:
        result = analyze_model(entry, input_res, job.analyzed)
    except NotAModel as reason:
        model.status, model.skip_reason = "skipped", str(reason)
        return model
    except CaptureError as error:
        model.status, model.error = "error", f"RF903: cannot trace: {error.reason or one_line(error.__cause__)}"
        model.component_types = error.component_types
        return model
    except USER_CODE_ERRORS as error:
        model.status, model.error = "error", f"RF902: cannot build: {one_line(error)}"
        return model
    if not (job.search_fixes and result.build == "meta" and not result.fully_utilized()):
        result.model = None  # kept only to measure the unchanged model for its fix search
    model.result, model.input_res = result, result.input_res
    model.component_types = result.component_types
    return model
