"""What a fix must not change about a model: the shapes it returns and the ops that act globally.

A stride change makes feature maps larger, and that is all it may do to what the model
returns: an output's batch and channel dimensions, its rank and the number of outputs stay,
only the dimensions that carry spatial positions may grow. An op whose output has one
position per spatial axis at I_res (a global pool, ``AvgPool2d(7)`` on a 7x7 map) must stay
global: pytorchcv's MobileNetV3 with a fixed ``AvgPool2d(7)`` head went from (1, 1000) to
(1, 64000) outputs with a "safe" stem fix. The analysis's capture records both
(``LayerGraph.outputs`` and ``LayerGraph.global_ops``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Interface:
    """The shape of each output (None for a non-tensor leaf), and how many times each op
    reduced a feature map to one position per spatial axis."""

    outputs: tuple[Shape | None, ...]
    global_ops: tuple[tuple[str, int], ...]


def interface_change(before: Interface | None, after: Interface | None, ndim: int) -> str | None:
    """Why ``after`` is not the interface of ``before`` (a feature map may grow), or None."""
    if before is None:
        return None  # nothing to compare with: the unchanged model does not run eagerly either
    if after is None:
        return "the model no longer runs at the input resolution"
    if len(before.outputs) != len(after.outputs):
        return f"the model returns {len(after.outputs)} outputs instead of {len(before.outputs)}"
    for old, new in zip(before.outputs, after.outputs):
        if old == new:
            continue
        spatial = range(2, len(old)) if old is not None and len(old) == ndim + 2 else range(0)
        if old is None or new is None or len(old) != len(new) or any(
                a != b for axis, (a, b) in enumerate(zip(old, new)) if axis not in spatial):
            return f"an output of shape {_shown(old)} becomes {_shown(new)}"
    lost = Counter(dict(before.global_ops)) - Counter(dict(after.global_ops))
    if lost:
        return f"{', '.join(sorted(lost))} no longer acts on the whole feature map"
    return None


def _shown(shape: Shape | None) -> str:
    return "(not a tensor)" if shape is None else "(" + ", ".join(map(str, shape)) + ")"
