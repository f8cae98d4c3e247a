"""FLOPs of the ops a capture records, by the formulas of ``torch.utils.flop_counter``.

A fix's cost is the FLOPs ratio of the model before and after it. ``FlopCounterMode``
counts them by running every aten op of a forward through Python (a dispatch mode), which
made a fix trial's capture two to ten times slower; the capture already sees each conv,
Linear, matmul and attention call with its operands' shapes, so it counts them itself with
torch's formulas. FlopCounterMode counts only those ops (convolutions, matrix products and
scaled dot-product attention, 2 per multiply-accumulate, biases ignored), and
``tests/test_flops.py`` checks the totals against it model by model.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.utils.flop_counter import conv_flop_count, sdpa_flop_count

from rflint.frontends.torch.ops import CONV_FUNCTIONS, CONV_TRANSPOSE_FUNCTIONS, arg, op_name

FORMULA_MODULES = (_ConvNd, nn.Linear, nn.MultiheadAttention)
TORCH_MODULES = {"torch", "_operator", "operator", "builtins", "math"}
PRODUCTS = {"matmul", "mm", "bmm", "addmm", "baddbmm", "addbmm", "__matmul__", "__rmatmul__"}
ADDED_PRODUCTS = {"addmm", "baddbmm", "addbmm"}  # (input, a, b): the product is of the 2nd and 3rd


def counted_inside(op: str, target) -> bool:
    """Whether a call's FLOPs cannot be read from its operands, so the capture counts them
    with FlopCounterMode around that one call: a function of the model's own that fx kept
    whole (``torch.fx.wrap``: torchvision's ``shifted_window_attention``), or a leaf module
    with weight matrices no formula here covers (an LSTM, ``nn.Bilinear``)."""
    if op == "call_function":
        return (getattr(target, "__module__", None) or "torch").partition(".")[0] not in TORCH_MODULES
    return op == "call_module" and not isinstance(target, FORMULA_MODULES) and any(
        p.dim() >= 2 for p in target.parameters())


def module_flops(module: nn.Module, args, kwargs, result) -> int:
    """FLOPs of one call of a leaf module."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor):
        return 0
    if isinstance(module, _ConvNd) and isinstance(result, torch.Tensor):
        return conv_flop_count(list(x.shape), list(module.weight.shape), list(result.shape),
                               transposed=isinstance(module, _ConvTransposeNd))
    if isinstance(module, nn.Linear):
        return _linear(x, module.weight)
    if isinstance(module, nn.MultiheadAttention):
        return _multihead_attention(module, args, kwargs)
    return 0


def function_flops(target, args, kwargs, result) -> int:
    """FLOPs of one call of a function or Tensor method."""
    if target in CONV_FUNCTIONS or target in CONV_TRANSPOSE_FUNCTIONS:
        x, weight = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "weight")
        if all(isinstance(t, torch.Tensor) for t in (x, weight, result)):
            return conv_flop_count(list(x.shape), list(weight.shape), list(result.shape),
                                   transposed=target in CONV_TRANSPOSE_FUNCTIONS)
        return 0
    if target is F.linear:
        x, weight = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "weight")
        return _linear(x, weight) if isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor) else 0
    if target is F.scaled_dot_product_attention:
        q, k, v = (arg(args, kwargs, i, name) for i, name in enumerate(("query", "key", "value")))
        return sdpa_flop_count(q.shape, k.shape, v.shape) if q.dim() == 4 else _attention(q, k, v)
    name = op_name(target)
    if target is operator.matmul or name in PRODUCTS:
        a, b = (args[1], args[2]) if name in ADDED_PRODUCTS else (args[0], args[1]) if len(args) > 1 else (None, None)
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and isinstance(result, torch.Tensor):
            return 2 * max(result.numel(), 1) * a.shape[-1] if a.dim() else 0
        return 0
    if name == "einsum":
        return _einsum(args)
    return 0


def _linear(x: torch.Tensor, weight: torch.Tensor) -> int:
    """``x @ weight.T`` as an (N, in) x (in, out) product."""
    return 2 * math.prod(x.shape[:-1]) * weight.shape[1] * weight.shape[0] if x.dim() else 0


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> int:
    """softmax(q k^T) v for any number of leading dimensions."""
    batch = math.prod(q.shape[:-2])
    return 2 * batch * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])


def _multihead_attention(module: nn.MultiheadAttention, args, kwargs) -> int:
    """The input projections, the attention and the output projection of
    ``F.multi_head_attention_forward`` (one packed projection or three)."""
    query, key, value = (arg(args, kwargs, i, name) for i, name in enumerate(("query", "key", "value")))
    if not all(isinstance(t, torch.Tensor) for t in (query, key, value)):
        return 0
    embed, heads = module.embed_dim, module.num_heads
    batch_first = module.batch_first and query.dim() == 3
    length, source = (query.shape[-2], key.shape[-2]) if batch_first else (query.shape[0], key.shape[0])
    batch = query.shape[0 if batch_first else 1] if query.dim() == 3 else 1
    projections = 2 * batch * embed * (length * embed + source * key.shape[-1] + source * value.shape[-1])
    head = embed // heads
    attention = 2 * batch * heads * length * source * head * 2
    return projections + attention + 2 * batch * length * embed * embed


def _einsum(args) -> int:
    """A two-operand einsum, which torch computes as one batched product: 2 x the product
    of every index's size."""
    equation, *operands = args
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    if not isinstance(equation, str) or len(operands) != 2 or "..." in equation:
        return 0
    sizes: dict[str, int] = {}
    for letters, operand in zip("".join(equation.split()).split("->")[0].split(","), operands):
        if not isinstance(operand, torch.Tensor) or len(letters) != operand.dim():
            return 0
        sizes.update(zip(letters, operand.shape))
    return 2 * math.prod(sizes.values())
