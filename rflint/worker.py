"""Runs inside a worker process: import files, find their models, analyze each.

Everything a file does at import time stays in this process; the parent only receives
plain ``FileReport`` objects. Messages to the parent say what is running, so that a
timeout or a crash can be pinned on the right file and model.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import sys
import sysconfig
import tokenize
import types
import warnings

from .diagnostics import Diagnostic, FileReport, ModelReport
from .result import Site


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split("\n")[0].split("While executing")[0].split())
    if isinstance(error, SystemExit):
        return f"SystemExit: the file called sys.exit({error.code!r}) at import"
    if isinstance(error, SyntaxError):
        return f"SyntaxError: {error.msg}" + (f" (line {error.lineno})" if error.lineno else "")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def failure(code: str, file: str, line: int, column: int, message: str, models=()) -> Diagnostic:
    return Diagnostic(code, message, file, line, column, line, column, tuple(models))


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
    """Import ``file`` with literal provenance, then build and analyze each of its models."""
    from .discover import with_configured
    from .literals import import_file, instrumented_imports

    report = FileReport(file)
    try:
        source = read_source(file)
        frontend = front_end(file, source)
        module = import_file(file, job.analyzed, fresh=False)
        entries, report.skipped = frontend.find_models(module, file, source)
        entries = with_configured(entries, module, file, source, job.explicit.get(file, ()), report.skipped)
        if not entries and not report.skipped:
            report.skipped.append("no models found")
    except (Exception, SystemExit) as error:
        line = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
        report.diagnostics.append(failure("RF901", file, line or 1, 1, f"cannot import: {one_line(error)}"))
        return report
    with instrumented_imports(job.analyzed):  # models may import analyzed files lazily
        for entry in entries:
            send(("model", file, entry.name))
            report.models.append(frontend.analyze_entry(entry, job))
    report.imported_files = local_imports(job.analyzed)
    report.hashes = {f: _sha256(f) for f in report.imported_files}  # --fix refuses files changed since
    if job.search_fixes:
        attach_fixes(entries, report, job, send, frontend.rebuilder)
    for model in report.models:
        model.keep_reported_layers()
    return report


def front_end(file: str, source: str):
    """What finds, analyses and rebuilds the models of a file: the Keras front end for a
    file that imports keras (only then is keras imported), else torch's."""
    from .keras_frontend.live import imports_keras

    if imports_keras(source):
        from .keras_frontend.live import KerasFrontEnd

        return KerasFrontEnd(file, source)
    from .discover import find_models

    return types.SimpleNamespace(find_models=find_models, analyze_entry=analyze_entry, rebuilder=None)


def attach_fixes(entries, report: FileReport, job, send, rebuilder=None) -> None:
    """Search fixes for the file's models that are not fully utilized, checking literals
    shared between them (EfficientNet B0..B7 share a table) against each; ``rebuilder``
    rebuilds them for trials (torch's by default)."""
    from .fixes import search_fixes, without_building_blocks

    model_of = {id(entry): model for entry, model in zip(entries, report.models)}
    analysed = without_building_blocks([(e, m.result) for e, m in zip(entries, report.models) if m.result is not None])
    trials: dict = {}
    progress = lambda what: send(("model", report.file, f"{what} (fix search)"))  # noqa: E731  timeout per rebuild
    for entry, result in analysed:
        if not result.fully_utilized():
            send(("model", report.file, f"{entry.name} (fix search)"))
            siblings = [s for s in analysed if s[0] is not entry]
            model_of[id(entry)].fixes = search_fixes(entry, result, job, siblings, trials, progress, rebuilder)


def _sha256(file: str) -> str:
    with open(file, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


_realpath = functools.lru_cache(maxsize=None)(os.path.realpath)  # called per file on every module


def local_imports(analyzed: frozenset[str]) -> tuple[str, ...]:
    """The files this process imported that a user may edit: the analyzed set plus anything
    outside the standard library, site-packages and rflint (the cache keys on their hashes)."""
    installed = tuple({sysconfig.get_paths()[key] + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")})
    own = os.path.dirname(os.path.realpath(__file__)) + os.sep
    files = {_realpath(f) for m in list(sys.modules.values()) if os.path.isabs(f := getattr(m, "__file__", None) or "")}
    return tuple(sorted(
        f for f in files
        if f in analyzed or (f.endswith(".py") and not f.startswith(installed) and not f.startswith(own))
    ))


def analyze_entry(entry, job) -> ModelReport:
    """Build and analyze one model; a failure becomes the model's error, not a crash."""
    from .analysis import CaptureError, analyze

    input_res, source = job.resolution_for(entry)
    shown = (input_res, input_res) if isinstance(input_res, int) else input_res  # until the model says its axes
    model = ModelReport(entry.name, entry.file, entry.line, entry.column, shown, entry.kind,
                        type_name=entry.type_name, input_res_source=source)
    try:
        result = analyze(entry.factory(), input_res, name=entry.name, analyzed_files=job.analyzed)
    except CaptureError as error:
        model.status, model.error = "error", f"RF903: cannot trace: {error.reason or one_line(error.__cause__)}"
        model.component_types = error.component_types
        return model
    except (Exception, SystemExit) as error:
        model.status, model.error = "error", f"RF902: cannot build: {one_line(error)}"
        return model
    model.result, model.input_res = result, result.input_res
    model.component_types = result.component_types
    return model


def serve(job, connection) -> None:
    """Worker process main loop: lint each file the parent sends until it sends None."""
    send = connection.send
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.stderr = io.StringIO()  # user code's noise must not reach rflint's output
        while (file := connection.recv()) is not None:
            send(("done", file, lint_file(file, job, send)))
    connection.close()
