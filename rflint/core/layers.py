"""The layers of an analysed model and where their source is: plain data (no torch) so it can
cross processes and the cache, and rules can read it without the Result that holds it."""

from __future__ import annotations

from dataclasses import dataclass
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
