"""Turn the workers' file reports into the run's diagnostics: rules, merging, suppression."""

from __future__ import annotations

from dataclasses import replace

from rflint.core.diagnostics import Diagnostic, FileReport, ModelReport
from rflint.core.noqa import covers, model_suppressions, read_lines
from rflint.core.rules import all_rules
from rflint.core.rules.base import model_site
from rflint.core.rules.rf9xx_analysis_failed import ANALYSIS_FAILURES


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
    """One model's diagnostics (the Python API's ``Result.diagnostics()``)."""
    return run_diagnostics([model])


def run_diagnostics(models: list[ModelReport], silenced=lambda model, code: False) -> list[Diagnostic]:
    """The rules over every model at once, so a line that builds layers of several models
    is one diagnostic listing each model's own layers; ``silenced(model, code)`` leaves a
    model out of a rule."""
    diagnostics = [failure_diagnostic(model) for model in models
                   if model.status == "error" and not silenced(model, model.error.partition(": ")[0])]
    analyzed = [model for model in models if model.status == "analyzed"]  # "skipped": not a model to lint
    for rule in all_rules():
        if rule not in ANALYSIS_FAILURES:
            diagnostics.extend(rule.check_models([m for m in analyzed if not silenced(m, rule.code)]))
    return diagnostics


def failure_diagnostic(model: ModelReport) -> Diagnostic:
    code, _, message = model.error.partition(": ")
    site = model_site(model)
    return Diagnostic(code, message, site.file, site.line, site.column, site.end_line,
                      site.end_column, (model.name,))


def merge_shared_lines(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per (code, location) listing every model: a failure at one
    definition, an unknown op in a shared block. The layer rules merge their own shared
    lines, each model's layers listed."""
    merged: dict[tuple, Diagnostic] = {}
    for d in diagnostics:
        key = (d.code, d.file, d.line, d.column)
        if key in merged and d.code != "RF003" and not d.layers:
            first = merged[key]
            models = first.models + tuple(m for m in d.models if m not in first.models)
            merged[key] = replace(first, models=models)
        else:
            merged.setdefault(key, d)
    return sorted(merged.values(), key=lambda d: (d.file, d.line, d.column, d.code))


def collect(reports: list[FileReport]) -> tuple[list[ModelReport], list[Diagnostic]]:
    """The run's models and diagnostics. A model silenced by ``# rflint: noqa[: CODES]`` on
    its def/class line takes no part in those codes' diagnostics, shared lines included."""
    models = models_of_run(reports)
    directives = {id(model): model_suppressions(read_lines(model.file), model.line) for model in models}
    diagnostics = [d for r in reports for d in r.diagnostics]
    diagnostics += run_diagnostics(models, lambda model, code: covers(directives[id(model)], code))
    return models, merge_shared_lines(diagnostics)
