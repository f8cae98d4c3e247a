"""What every rule is made of: its code, docs and examples, and where its diagnostics point.

A rule's docstring is its documentation (ruff's headings: What it does, Why is this bad?,
Example, Use instead, Fix safety); ``VALID``/``INVALID`` hold model sources that must not /
must trigger it (Fixit style) and feed both the tests and ``rules/*.md``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Iterable

from rflint.core.diagnostics import Diagnostic, LayerRef, ModelReport
from rflint.core.layers import Layer, Site


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

    def check_models(self, models: Iterable[ModelReport]) -> list[Diagnostic]:
        """The diagnostics of every model of a run (layer rules merge shared lines)."""
        return [d for model in models for d in self.check(model)]

    @classmethod
    def explanation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


def fmt_size(values: tuple[int, ...]) -> str:
    """224 for a square field, 224x192 otherwise."""
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def layer_site(layer: Layer, model: ModelReport) -> Site:
    """Where to point for a layer: its construction or call site, else the model's definition."""
    return construction_site(layer, model.file) or model_site(model)


def construction_site(layer: Layer, model_file: str | None) -> Site | None:
    """The layer's construction in the model's file if that frame exists, else the
    innermost construction frame in an analyzed file, else the call in ``forward``."""
    for site in layer.constructed_at:
        if site.file == model_file:
            return site
    if layer.constructed_at:
        return layer.constructed_at[0]
    return layer.called_at


def model_site(model: ModelReport) -> Site:
    return Site(model.file, model.line, model.column, model.line, model.column)


class LayerRule(Rule):
    """A rule that flags layers; ``measure`` names the field compared with I_res."""

    measure: str

    def flagged(self, model: ModelReport) -> list[Layer]:
        raise NotImplementedError

    def check(self, model: ModelReport) -> list[Diagnostic]:
        return self.check_models([model])

    def check_models(self, models: Iterable[ModelReport]) -> list[Diagnostic]:
        """One diagnostic per source line and resolution: the layers several models build
        on one line (EfficientNet B0..B7 share their blocks) are listed together."""
        by_site: dict[tuple, list[tuple[ModelReport, Layer]]] = {}
        for model in models:
            for layer in self.flagged(model):
                site = layer_site(layer, model)
                key = (site.file, site.line, site.column, site.end_line, site.end_column, model.input_res)
                by_site.setdefault(key, []).append((model, layer))
        return [self._diagnostic(Site(*key[:5]), key[5], flagged) for key, flagged in by_site.items()]

    def _diagnostic(self, site: Site, input_res: tuple[int, ...], flagged: list[tuple[ModelReport, Layer]]) -> Diagnostic:
        models = tuple(dict.fromkeys(model.name for model, _ in flagged))
        in_models: dict[tuple, list[str]] = {}  # one entry per distinct layer, with its models
        for model, layer in flagged:
            in_models.setdefault((layer.name, layer.r_min), []).append(model.name)
        layers = tuple(LayerRef(name, r_min, tuple(names)) for (name, r_min), names in in_models.items())
        shown = ", ".join(_layer_text(layer, models) for layer in layers[:3])
        more = f", +{len(layers) - 3} more" if len(layers) > 3 else ""
        count = f"{len(layers)} layers have" if len(layers) > 1 else "layer has"
        return Diagnostic(
            code=self.code,
            message=f"{count} {self.measure} >= {fmt_size(input_res)} ({shown}{more})",
            file=site.file,
            line=site.line,
            column=site.column,
            end_line=site.end_line,
            end_column=site.end_column,
            models=models,
            layers=layers,
            severity=self.severity,
        )


def _layer_text(layer: LayerRef, models: tuple[str, ...]) -> str:
    """``name r_min=N``, and which models have it when not all of the diagnostic's do."""
    text = f"{layer.name} r_min={fmt_size(layer.r_min)}"
    return text if len(layer.models) == len(models) else f"{text} in {', '.join(layer.models)}"
