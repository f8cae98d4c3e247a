"""The analysis result: plain data (no torch) so it can cross processes and the cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from rflint.core.layers import Layer, Site
from rflint.core.resolution import as_resolution


@dataclass
class Result:
    """What rflint knows about one model: its layers in depth order and its limits."""

    name: str
    input_res: tuple[int, ...]
    layers: list[Layer]
    i_min: tuple[int, ...]
    i_max: tuple[int, ...]
    unknown_ops: dict[str, int] = field(default_factory=dict)  # op type -> calls a bounded field flows through
    unknown: list[Layer] = field(default_factory=list)  # those calls, located like layers (kind "unknown")
    unbounded_by: Layer | None = None  # the op after which no layer is bounded: the model cannot be judged
    capture: str = "fx"
    build: str = "meta"
    component_types: frozenset[str] = frozenset()  # "module:qualname" of every submodule class
    source: Site | None = None  # where the analyzed factory or class is defined
    factory: object = field(default=None, repr=False, compare=False)  # for fixes(); not pickled
    graph: object = field(default=None, repr=False, compare=False)  # the core LayerGraph, to rank fixes; not pickled
    model: object = field(default=None, repr=False, compare=False)  # the front end's built model, kept for a fix search; not pickled

    def __getstate__(self):
        return {**self.__dict__, "factory": None, "graph": None, "model": None}

    @property
    def ndim(self) -> int:
        return len(self.input_res)

    @property
    def neutral_ops(self) -> dict[str, int]:
        """The name ``unknown_ops`` had in 0.1 (kept one version: the JSON schema is stable)."""
        return self.unknown_ops

    @property
    def judged(self) -> bool:
        """False for a model with convolutions or pools but no bounded layer: whatever made
        every field unbounded (``unbounded_by``) leaves nothing to compare with I_res."""
        return self.unbounded_by is None

    def resolution(self, input_res: Sequence[int] | int | None = None) -> tuple[int, ...]:
        """``input_res`` per axis, or the resolution the model was analyzed at."""
        return self.input_res if input_res is None else as_resolution(input_res, self.ndim)

    def fully_utilized(self, input_res: Sequence[int] | int | None = None) -> bool:
        """I_min < I_res on every axis; never True for a model rflint cannot judge."""
        return self.judged and all(m < i for m, i in zip(self.i_min, self.resolution(input_res)))

    def unproductive(self, input_res: Sequence[int] | int | None = None) -> list[Layer]:
        res = self.resolution(input_res)
        return [layer for layer in self.layers if layer.is_unproductive(res)]

    def underutilized(self, input_res: Sequence[int] | int | None = None) -> list[Layer]:
        """Layers with r_min >= I_res that are not already unproductive."""
        res = self.resolution(input_res)
        return [l for l in self.layers if l.is_underutilized(res) and not l.is_unproductive(res)]

    def diagnostics(self, input_res: Sequence[int] | int | None = None) -> list:
        """The RF001-RF003 diagnostics the linter would report for this model."""
        from rflint.core.diagnostics import ModelReport
        from rflint.core.lint import model_diagnostics

        site = self.source or Site("<unknown>", 1, 1, 1, 1)
        report = ModelReport(self.name, site.file, site.line, site.column, self.resolution(input_res), result=self)
        return model_diagnostics(report)

    def fixes(self) -> tuple:
        """Verified stride / patch-size fixes, best first (rebuilds the model: needs torch)."""
        return _services.fixes(self)

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    def _repr_html_(self) -> str:
        """Jupyter's view: the summary, the r_min/r_max chart against I_res, the flagged layers."""
        return _services.html(self)

    def plot(self, fixed: "Result | None" = None):
        """The r_min/r_max chart against I_res as a matplotlib Figure (needs matplotlib)."""
        return _services.plot(self, fixed)


class ResultServices(Protocol):
    """What a Result does beyond its numbers, with code from later stages (the fix search
    rebuilds models with torch; the views are reporters). The core cannot import those, so
    the package installs them (``rflint/__init__.py``) before any Result exists."""

    def fixes(self, result: Result) -> tuple: ...

    def html(self, result: Result) -> str: ...

    def plot(self, result: Result, fixed: Result | None): ...


_services: ResultServices


def install_services(services: ResultServices) -> None:
    global _services
    _services = services
