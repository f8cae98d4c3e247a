"""Turn the workers' file reports into the run's diagnostics: rules, merging, suppression."""

from __future__ import annotations

from dataclasses import replace

from .diagnostics import Diagnostic, FileReport, ModelReport
from .rules import all_rules, model_site
from .rules.rf9xx_analysis_failed import ANALYSIS_FAILURES


def models_of_run(reports: list[FileReport]) -> list[ModelReport]:
    """Every model found, minus classes that are only building blocks of another model."""
    models = [m for r in reports for m in r.models]
    used_inside = {}
    for m in models:
        for component in m.component_types:
            used_inside.setdefault(component, set()).add(id(m))

    def is_block(m: ModelReport) -> bool:
        return m.kind == "class" and not m.configured and bool(used_inside.get(m.type_name, set()) - {id(m)})

    return [m for m in models if not is_block(m)]


def model_diagnostics(model: ModelReport) -> list[Diagnostic]:
    if model.status == "skipped":  # not a model to lint: an info line under --verbose
        return []
    if model.status == "error":
        code, _, message = model.error.partition(": ")
        site = model_site(model)
        return [Diagnostic(code, message, site.file, site.line, site.column, site.end_line,
                           site.end_column, (model.name,))]
    diagnostics = []
    for rule in all_rules():
        if rule not in ANALYSIS_FAILURES:
            diagnostics.extend(rule.check(model))
    return diagnostics


def merge_shared_lines(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per (code, location): a line shared by B0..B7 lists every model."""
    merged: dict[tuple, Diagnostic] = {}
    for d in diagnostics:
        key = (d.code, d.file, d.line, d.column)
        if key in merged and d.code != "RF003":
            first = merged[key]
            models = first.models + tuple(m for m in d.models if m not in first.models)
            merged[key] = replace(first, models=models)
        else:
            merged.setdefault(key, d)
    return sorted(merged.values(), key=lambda d: (d.file, d.line, d.column, d.code))


def collect(reports: list[FileReport]) -> tuple[list[ModelReport], list[Diagnostic]]:
    models = models_of_run(reports)
    diagnostics = [d for r in reports for d in r.diagnostics]
    for model in models:
        diagnostics.extend(model_diagnostics(model))
    return models, merge_shared_lines(diagnostics)
