"""What a fix must not change about a model: the shapes it returns and the ops that act globally.

A stride change makes feature maps larger, and that is all it may do to what the model
returns: an output's batch and channel dimensions, its rank and the number of outputs stay,
only the dimensions that carry spatial positions may grow. An op whose output has one
position per spatial axis at I_res (a global pool, ``AvgPool2d(7)`` on a 7x7 map) must stay
global: pytorchcv's MobileNetV3 with a fixed ``AvgPool2d(7)`` head went from (1, 1000) to
(1, 64000) outputs with a "safe" stem fix. Both are read from one forward on meta tensors.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from rflint.frontends.torch.capture import input_spec

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Interface:
    """The shape of each output (None for a non-tensor leaf), and how many times each op
    reduced a feature map to one position per spatial axis."""

    outputs: tuple[Shape | None, ...]
    global_ops: tuple[tuple[str, int], ...]


class _GlobalOps(TorchFunctionMode):
    """Counts calls that turn an N x C x spatial map of several positions into one position."""

    def __init__(self, ndim: int):
        super().__init__()
        self.ndim = ndim
        self.counts: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        source = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if (isinstance(result, torch.Tensor) and source is not None
                and source.dim() == result.dim() == self.ndim + 2
                and max(source.shape[2:]) > 1 and all(size == 1 for size in result.shape[2:])):
            self.counts[getattr(func, "__name__", str(func))] += 1
        return result


def measure_interface(model: nn.Module, input_res: Sequence[int]) -> Interface | None:
    """The interface of ``model`` (on the meta device, in eval mode) at ``input_res``, or
    None when its forward does not run there with any input channel count rflint tries."""
    model.eval()
    for channels in input_spec(model).channels:
        counter = _GlobalOps(len(input_res))
        try:
            with torch.no_grad(), counter:
                output = model(torch.empty(1, channels, *input_res, device="meta"))
        except Exception:
            continue
        shapes = tuple(tuple(leaf.shape) if isinstance(leaf, torch.Tensor) else None for leaf in tree_leaves(output))
        return Interface(shapes, tuple(sorted(counter.counts.items())))
    return None


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
