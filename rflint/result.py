"""The analysis result: plain data (no torch) so it can cross processes and the cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence



@dataclass(frozen=True)
class Site:
    """A span of source: 1-based line and 1-based character column (like ruff)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Layer:
    """One op that moves receptive fields (conv, pooling, resampling, a bounded Linear).

    ``constructed_at`` lists the frames of the module's construction in analyzed files,
    innermost first; ``stride_literals``/``kernel_literals`` give, per axis, where the
    literal that set the value was written (None when computed or not in an analyzed file).
    """

    name: str
    op_type: str
    kind: str
    kernel: tuple[int, ...]
    stride: tuple[int | Fraction, ...]  # a Fraction only where resampling makes it one
    dilation: tuple[int, ...]
    r_min: tuple[int, ...] | None
    r_max: tuple[int, ...] | None
    r_in_min: tuple[int, ...] | None
    jump: tuple[int | Fraction, ...] | None
    called_at: Site | None = None
    constructed_at: tuple[Site, ...] = ()
    stride_literals: tuple[Site | None, ...] = ()
    kernel_literals: tuple[Site | None, ...] = ()

    @property
    def bounded(self) -> bool:
        return self.r_min is not None

    def is_underutilized(self, input_res: Sequence[int]) -> bool:
        return self.bounded and any(r >= i for r, i in zip(self.r_min, input_res))

    def is_unproductive(self, input_res: Sequence[int]) -> bool:
        return self.r_in_min is not None and all(r >= i for r, i in zip(self.r_in_min, input_res))


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

    def __getstate__(self):
        return {**self.__dict__, "factory": None, "graph": None}

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
        from .diagnostics import ModelReport
        from .lint import model_diagnostics

        site = self.source or Site("<unknown>", 1, 1, 1, 1)
        report = ModelReport(self.name, site.file, site.line, site.column, self.resolution(input_res), result=self)
        return model_diagnostics(report)

    def fixes(self) -> tuple:
        """Verified stride / patch-size fixes, best first (rebuilds the model: needs torch)."""
        from .analysis import propose_fixes

        return propose_fixes(self)

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    def _repr_html_(self) -> str:
        """Jupyter's view: the summary, the r_min/r_max chart against I_res, the flagged layers."""
        from .notebook import result_html

        return result_html(self)

    def plot(self, fixed: "Result | None" = None):
        """The r_min/r_max chart against I_res as a matplotlib Figure (needs matplotlib)."""
        from .notebook import plot

        return plot(self, fixed)


def as_resolution(value: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    """An int applies to every axis; a sequence must name one size per axis."""
    if isinstance(value, int):
        return (value,) * ndim
    value = tuple(int(v) for v in value)
    if len(value) != ndim:
        raise ValueError(f"input resolution {value} has {len(value)} axes, the model has {ndim}")
    return value
