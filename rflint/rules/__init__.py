"""Stage 6: the rule registry. One module per rule, each carrying its code, docs and examples.

A rule's docstring is its documentation (ruff's headings: What it does, Why is this bad?,
Example, Use instead, Fix safety); ``VALID``/``INVALID`` hold model sources that must not /
must trigger it (Fixit style) and feed both the tests and ``rules/*.md``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Iterable

from ..diagnostics import Diagnostic, LayerRef, ModelReport
from ..result import Layer, Site


@dataclass(frozen=True)
class Case:
    """A model file and the (line, column) of each diagnostic the rule must emit on it."""

    source: str
    input_res: int = 224
    expected: tuple[tuple[int, int], ...] = ()
    fixed: str | None = None  # the file after ``--fix --unsafe-fixes``, when the rule has a fix


class Rule:
    code: str
    name: str
    summary: str
    fix_availability: str = "None"  # "Always" | "Sometimes" | "None"
    since: str = "0.1.0"
    severity: str = "error"
    VALID: tuple[Case, ...] = ()
    INVALID: tuple[Case, ...] = ()

    def check(self, model: ModelReport) -> Iterable[Diagnostic]:
        return ()

    @classmethod
    def explanation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


def fmt_size(values: tuple[int, ...]) -> str:
    """224 for a square field, 224x192 otherwise."""
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def layer_site(layer: Layer, model: ModelReport) -> Site:
    """Where to point for a layer: its construction in the model's file if that frame
    exists, else the innermost construction frame in an analyzed file, else the call in
    ``forward``, else the model's definition."""
    for site in layer.constructed_at:
        if site.file == model.file:
            return site
    if layer.constructed_at:
        return layer.constructed_at[0]
    if layer.called_at is not None:
        return layer.called_at
    return model_site(model)


def model_site(model: ModelReport) -> Site:
    return Site(model.file, model.line, model.column, model.line, model.column)


def layer_diagnostics(rule: Rule, model: ModelReport, layers: list[Layer], measure: str) -> list[Diagnostic]:
    """One diagnostic per source line: layers built on the same line are listed together."""
    by_site: dict[tuple, list[Layer]] = {}
    for layer in layers:
        site = layer_site(layer, model)
        by_site.setdefault((site.file, site.line, site.column, site.end_line, site.end_column), []).append(layer)
    res = fmt_size(model.input_res)
    diagnostics = []
    for (file, line, column, end_line, end_column), group in by_site.items():
        shown = ", ".join(f"{l.name} r_min={fmt_size(l.r_min)}" for l in group[:3])
        more = f", +{len(group) - 3} more" if len(group) > 3 else ""
        count = f"{len(group)} layers have" if len(group) > 1 else "layer has"
        diagnostics.append(
            Diagnostic(
                code=rule.code,
                message=f"{count} {measure} >= {res} ({shown}{more})",
                file=file,
                line=line,
                column=column,
                end_line=end_line,
                end_column=end_column,
                models=(model.name,),
                layers=tuple(LayerRef(l.name, l.r_min) for l in group),
                severity=rule.severity,
            )
        )
    return diagnostics


def all_rules() -> list[Rule]:
    from .rf001_unproductive_layer import UnproductiveLayer
    from .rf002_underutilized_layer import UnderutilizedLayer
    from .rf003_not_fully_utilized import NotFullyUtilized
    from .rf004_unknown_op import UnknownOp
    from .rf9xx_analysis_failed import ANALYSIS_FAILURES
    from .rf904_no_bounded_layer import NoBoundedLayer

    return [UnproductiveLayer(), UnderutilizedLayer(), NotFullyUtilized(), UnknownOp(), *ANALYSIS_FAILURES,
            NoBoundedLayer()]


def rule_by_code() -> dict[str, Rule]:
    return {rule.code: rule for rule in all_rules()}
