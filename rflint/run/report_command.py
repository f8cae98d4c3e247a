"""``rflint report MODEL_SPEC``: import one model, analyse it, search its fix, and write the
HTML page ``report.html`` renders. Failures are one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

from rflint.core.result import Result
from rflint.report.html import Report, render, shown_path, summary_line

EXIT_OK, EXIT_USAGE = 0, 2


class ReportError(Exception):
    """A bad spec, an import or build failure: one line on stderr, exit 2."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rflint report",
        description="Write a self-contained HTML report of one model's receptive fields and proposed fix. "
        "A model listed in [tool.rflint] models is built with its kwargs and input-res.",
    )
    p.add_argument("spec", metavar="MODEL_SPEC", help='"path.py::name" or "package.module:factory"')
    p.add_argument("--input-res", metavar="N|HxW|DxHxW|auto",
                   help="input resolution the model is trained on (default: the config's, else 224)")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--no-fix", action="store_true", help="do not search for a fix (faster)")
    p.add_argument("--config", help="path to a pyproject.toml or rflint.toml to use")
    p.add_argument("--isolated", action="store_true", help="ignore all configuration files")
    return p


def main(argv: Sequence[str]) -> int:
    from rflint.run.config import ConfigError

    args = parser().parse_args(argv)
    if importlib.util.find_spec("matplotlib") is None:  # say so before minutes of analysis
        print("rflint: error: the HTML report draws its chart with matplotlib: pip install 'rflint[report]'",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = _settings(args)
        report = build_report(args.spec, args.input_res, search_fix=not args.no_fix, settings=settings)
        Path(args.output).write_text(render(report), encoding="utf-8")
    except (ReportError, ConfigError, OSError) as error:
        print(f"rflint: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.output}: {summary_line(report)}")
    return EXIT_OK


def _settings(args):
    """``[tool.rflint]`` of the working directory's project, as a lint run there reads it."""
    from rflint.run.config import find_config, load_settings

    config = None if args.isolated else (Path(args.config) if args.config else find_config(Path.cwd()))
    return load_settings(config, {})


def build_report(spec: str, input_res: str | None = None, search_fix: bool = True, settings=None) -> Report:
    """Import the model's file with literal provenance, analyse it, search the fix the
    linter would propose (checked against the file's other models, as ``rflint --fix``
    does) and re-analyse the model with that fix applied in memory. A model the config
    lists is built with its ``kwargs``; the resolution is ``input_res``, else the model's
    configured one, else the config's, else 224."""
    from rflint.fix.search import analyzed_modules_restored, search_fixes
    from rflint.source.literals import package_siblings

    requested = _requested_resolution(input_res) if input_res is not None else None
    configured, file = _locate(spec, settings.models if settings else ())
    if requested is None:
        requested = configured.input_res or _configured_resolution(settings)
    analyzed = package_siblings(file)
    with analyzed_modules_restored(analyzed):  # in-process callers keep their modules
        entry, others = _load(configured, file, analyzed)
        res = _resolution(requested, entry)
        result = _analyze(entry, res, analyzed)
        if result.fully_utilized() or not search_fix:
            return Report(spec, result)
        siblings = _siblings(entry, result, others, res, analyzed)
        fixes = search_fixes(entry, result, SimpleNamespace(analyzed=analyzed), siblings)
        if not fixes[0].edits:  # display-only advice: nothing to re-analyse
            return Report(spec, result, fixes)
        overrides = {(e.file, e.line, e.column): int(e.new) for e in fixes[0].edits}
        fixed_entry, _ = _load(configured, file, analyzed, overrides)
        return Report(spec, result, fixes, _analyze(fixed_entry, res, analyzed))


def _configured_resolution(settings):
    if settings is not None and settings.input_res_auto:
        return "auto"
    return (settings.input_res if settings is not None else None) or (224, 224)


def _locate(spec: str, configured_models=()):
    """The spec as a model entry (the ``[tool.rflint] models`` syntax; the configured entry
    itself, with its kwargs and resolution, when the config lists the same model) and its file."""
    from rflint.run.config import model_entry
    from rflint.run.session import entry_file
    from rflint.core.errors import one_line

    try:
        requested = model_entry({"target": spec}, Path.cwd())
        configured = next((entry for entry in configured_models if _same_model(entry, requested)), requested)
        file = entry_file(configured, role="model")
    except ValueError as error:  # rflint's own message, naming the spec: malformed, module not found
        raise ReportError(str(error)) from None
    except (Exception, SystemExit) as error:  # find_spec imports the parent packages: user code
        raise ReportError(f"cannot import {spec}: {one_line(error)}") from None
    if not os.path.isfile(file):
        raise ReportError(f"{spec}: no such file: {file}")
    return configured, file


def _same_model(configured, requested) -> bool:
    return (configured.name, configured.file, configured.module) == (requested.name, requested.file, requested.module)


def _load(configured, file: str, analyzed, overrides=None):
    """The model's ``ModelEntry`` from its instrumented file, and the file's other models."""
    from rflint.frontends.discover import find_models, with_configured
    from rflint.source.literals import import_file
    from rflint.core.errors import one_line
    from rflint.run.worker import read_source

    try:
        source = read_source(file)
        module = import_file(file, analyzed, overrides)
    except (Exception, SystemExit) as error:
        raise ReportError(f"cannot import {configured.target}: {one_line(error)}") from None
    if not hasattr(module, configured.name):
        raise ReportError(f"{configured.target}: '{configured.name}' is not defined in {shown_path(file)}")
    try:
        entries, skipped = find_models(module, file, source)
        entries = with_configured(entries, module, file, source, [configured], skipped)
    except (Exception, SystemExit) as error:
        raise ReportError(f"{configured.target}: {one_line(error)}") from None
    entry = next(e for e in entries if e.name == configured.name)
    return entry, [e for e in entries if e is not entry]


def _requested_resolution(text: str):
    """N, HxW, DxHxW or ``auto``, checked before the (slow) import."""
    from rflint.core.resolution import parse_input_res

    try:
        return parse_input_res(text)
    except ValueError as error:
        raise ReportError(f"--input-res: {error}") from None


def _resolution(requested, entry):
    """``auto`` is the size the model's library declares for it; a square size applies to
    every axis, as in a lint run (Conv1d and Conv3d models too)."""
    from rflint.frontends.discover import declared_resolution
    from rflint.core.resolution import broadcast

    res = declared_resolution(entry) if requested == "auto" else requested
    if res is None:
        raise ReportError(f"--input-res auto: {entry.name} declares no input resolution; pass N, HxW or DxHxW")
    return broadcast(res)


def _analyze(entry, res, analyzed) -> Result:
    from rflint.frontends.torch.analysis import analyze
    from rflint.source.literals import instrumented_imports
    from rflint.core.errors import one_line

    try:
        with instrumented_imports(analyzed):  # models may import analyzed files lazily
            return analyze(entry.factory(), res, name=entry.name, analyzed_files=analyzed)
    except (Exception, SystemExit) as error:
        raise ReportError(f"cannot analyze {entry.name}: {one_line(error)}") from None


def _siblings(entry, result: Result, others, res, analyzed) -> list[tuple]:
    """The file's other models, which ``rflint --fix`` checks a shared literal against; a
    model that does not build, or a class that is a building block of another, is none."""
    from rflint.fix.search import without_building_blocks

    analysed = []
    for other in others:
        try:
            analysed.append((other, _analyze(other, res, analyzed)))
        except ReportError:
            continue
    models = [(e, r, r.component_types) for e, r in [(entry, result), *analysed]]
    return [s for s in without_building_blocks(models) if s[0] is not entry]


# ---------------------------------------------------------------------------- the page


