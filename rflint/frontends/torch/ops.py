"""What each torch op does to positions: torch modules and functions mapped onto the core's
layout algebra (``core.layout``).

Both captures (fx and eager) call ``effect_of_module`` / ``effect_of_function`` with the
op's real meta-tensor arguments and result, and a ``Layouts`` table saying which input
axes each dimension of each tensor carries. The answer is an ``Effect``: the node's kind,
its receptive-field op, per-input ops where inputs are mixed differently (attention mixes
the keys' positions, not the queries'), the layout of each output, and the literals that
set its stride and kernel. An op rflint does not know is ``unknown``: it is counted and
reported wherever a bounded field flows through it, never passed silently.
"""

from __future__ import annotations

import operator
import re
import string
from dataclasses import dataclass, field
from fractions import Fraction
from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.utils._pytree import tree_leaves

from rflint.core import layout as lay
from rflint.core import receptive_field as rf
from rflint.core.layout import FEATURES, Layout, LayoutError

POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
         nn.LPPool1d, nn.LPPool2d)
ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
            nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
UNPOOLS = (nn.MaxUnpool1d, nn.MaxUnpool2d, nn.MaxUnpool3d)
FRACTIONAL_POOLS = (nn.FractionalMaxPool2d, nn.FractionalMaxPool3d)
# torch.nn leaves that mix no positions. Norms count as pointwise, as in the paper: their
# statistics (InstanceNorm's, GroupNorm's over H x W) are not spatial context.
POINTWISE_MODULES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.RMSNorm,
                     nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
                     nn.LeakyReLU, nn.ELU, nn.Mish, nn.PReLU, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                     nn.Dropout3d, nn.AlphaDropout, nn.Hardtanh, nn.SELU, nn.CELU, nn.GLU, nn.Softplus,
                     nn.Softsign, nn.Tanhshrink, nn.Threshold, nn.LogSigmoid, nn.Hardshrink, nn.Softshrink,
                     nn.ChannelShuffle, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d,
                     nn.ConstantPad2d, nn.ConstantPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d,
                     nn.ReflectionPad3d, nn.ReplicationPad1d, nn.ReplicationPad2d, nn.ReplicationPad3d,
                     nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d)
LEAF_TYPES = (_ConvNd, *POOLS, *ADAPTIVE, *UNPOOLS, *FRACTIONAL_POOLS, nn.Upsample, nn.Linear, nn.Bilinear,
              nn.Flatten, nn.Unflatten, nn.MultiheadAttention, nn.PixelShuffle, nn.PixelUnshuffle, nn.Unfold,
              nn.Fold, nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d)

CONV_FUNCTIONS = {F.conv1d, F.conv2d, F.conv3d}
CONV_TRANSPOSE_FUNCTIONS = {F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d}
MAX_POOL_FUNCTIONS = {F.max_pool1d, F.max_pool2d, F.max_pool3d, torch.max_pool1d, torch.max_pool2d,
                      torch.max_pool3d, F.max_pool1d_with_indices, F.max_pool2d_with_indices,
                      F.max_pool3d_with_indices}
AVG_POOL_FUNCTIONS = {F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, torch.avg_pool1d}
LP_POOL_FUNCTIONS = {F.lp_pool1d, F.lp_pool2d}
ADAPTIVE_FUNCTIONS = {F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
                      F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
                      torch.adaptive_avg_pool1d, torch.adaptive_max_pool1d, torch._C._nn.adaptive_avg_pool2d,
                      torch._C._nn.adaptive_avg_pool3d, torch._C._nn.adaptive_max_pool2d,
                      torch._C._nn.adaptive_max_pool3d}
RESAMPLE_FUNCTIONS = {F.interpolate, F.upsample, F.upsample_nearest, F.upsample_bilinear}
UNPOOL_FUNCTIONS = {F.max_unpool1d, F.max_unpool2d, F.max_unpool3d}
RESHAPES = {"view", "reshape", "flatten", "unflatten", "view_as", "reshape_as", "squeeze", "unsqueeze",
            "atleast_2d", "atleast_3d", "ravel"}
PERMUTES = {"permute", "transpose", "swapaxes", "swapdims", "movedim", "moveaxis", "t", "T", "mT"}
REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "norm", "logsumexp", "prod",
              "nanmean", "nansum", "median", "all", "any", "var_mean", "std_mean", "argmax", "argmin", "cumsum",
              "cumprod", "sort", "topk", "argsort", "cummax", "cummin"}
SOFTMAXES = {"softmax", "log_softmax", "softmin", "_softmax"}
MATMULS = {"matmul", "bmm", "mm", "baddbmm", "addmm", "addbmm", "einsum", "linear", "bilinear"}
ATTENTIONS = {"scaled_dot_product_attention", "multi_head_attention_forward"}
UNBOUNDED_FUNCTIONS = {"grid_sample", "deform_conv2d", "affine_grid", "nonzero", "masked_select",
                       "index_select", "gather", "take_along_dim", "scatter", "scatter_add", "index_add"}
CONCATENATIONS = {"cat", "concat", "concatenate", "stack", "hstack", "vstack"}
SPLITS = {"chunk", "split", "tensor_split", "unbind", "split_with_sizes"}
# Ops that keep their input's layout and mix no positions.
POINTWISE = {
    "add", "sub", "mul", "truediv", "div", "floordiv", "neg", "pow", "iadd", "imul", "isub", "itruediv",
    "rsub", "radd", "rmul", "mod", "remainder", "fmod", "lerp", "addcmul", "addcdiv",
    "contiguous", "clone", "detach", "to", "type", "float", "half", "double", "bfloat16", "type_as", "cpu", "cuda",
    "expand", "expand_as", "sigmoid", "tanh", "relu", "relu6", "gelu", "silu", "hardswish", "hardsigmoid",
    "mish", "softplus", "elu", "selu", "celu", "leaky_relu", "hardtanh", "clamp", "clamp_min", "clamp_max",
    "clip", "abs", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "batch_norm", "layer_norm",
    "group_norm", "instance_norm", "rms_norm", "local_response_norm", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "feature_alpha_dropout", "drop_path", "stochastic_depth", "_assert",
    "normalize", "channel_shuffle", "native_channel_shuffle", "where", "masked_fill", "square", "sign", "erf",
    "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "roll", "flip", "fliplr",
    "flipud", "eq", "ne", "lt", "gt", "le", "ge", "and_", "or_", "xor", "invert", "not_", "logical_not",
    "logical_and", "logical_or", "setitem", "sin", "cos", "floor", "ceil", "round", "trunc", "frac",
    "maximum", "minimum", "fmax", "fmin", "hardshrink", "softshrink", "tanhshrink", "softsign", "logsigmoid",
    "threshold", "glu", "prelu", "rrelu", "silu_", "nan_to_num", "requires_grad_", "square_", "bernoulli",
    "copy_", "fill_", "zero_", "masked_fill_", "div_", "mul_", "add_", "sub_", "clamp_", "sigmoid_", "relu_",
    "tanh_", "hardswish_", "gelu_", "exp_", "pow_", "neg_", "abs_", "sqrt_", "float_power", "atan2", "heaviside",
    "sinh", "cosh", "tan", "asin", "acos", "atan", "log2", "log10", "exp2", "sgn", "signbit", "positive",
    "pad", "broadcast_to", "repeat", "tile", "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor",
    "bitwise_and", "bitwise_or", "bitwise_not", "isnan", "isinf", "isfinite", "logit", "erfc", "erfinv",
}


@dataclass
class Effect:
    """What one op does: see the module docstring."""

    kind: str
    op: Any = rf.NEUTRAL
    layouts: list[Layout | None] = field(default_factory=list)  # one per output tensor
    sources: list[torch.Tensor] | None = None  # the tensors the node reads (default: every tensor argument)
    edge_ops: tuple | None = None  # per source, applied before the node's own op
    strides: tuple = ()  # the values that set the stride, per axis (their literals are fixed)
    kernels: tuple = ()


class Layouts:
    """The layout of every tensor a capture has seen, by identity (kept alive by the capture)."""

    def __init__(self, ndim: int):
        self.ndim = ndim
        self.known: dict[int, Layout] = {}
        self.slices: dict[int, tuple[torch.Tensor, tuple, tuple]] = {}  # strided slices: source, steps, offsets

    def of(self, tensor: torch.Tensor) -> Layout:
        known = self.known.get(id(tensor))
        shape = tuple(tensor.shape)
        if known is not None and known.shape == shape:
            return known
        return Layout.plain(shape)

    def set(self, tensor: torch.Tensor, layout: Layout | None) -> None:
        if layout is not None and layout.shape == tuple(tensor.shape):
            self.known[id(tensor)] = layout
        else:
            self.known.pop(id(tensor), None)


PLAIN_ARGUMENTS = frozenset({int, float, bool, str, type(None)})


def tensors_in(*values) -> list[torch.Tensor]:
    if len(values) == 1 and isinstance(values[0], torch.Tensor):
        return [values[0]]  # nearly every call: no tree walk
    if len(values) == 2 and type(values[0]) is tuple and type(values[1]) is dict:
        return argument_tensors(*values)  # a call's (args, kwargs)
    return [v for v in tree_leaves(values) if isinstance(v, torch.Tensor)]


def argument_tensors(args, kwargs) -> list[torch.Tensor]:
    """The tensors among a call's arguments, in pytree's order; a pytree walk only for
    containers (walking ``(args, kwargs)`` whole cost 14 % of capturing pytorchcv's models)."""
    found = []
    for value in (*args, *kwargs.values()) if kwargs else args:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif type(value) not in PLAIN_ARGUMENTS:
            found += [v for v in tree_leaves(value) if isinstance(v, torch.Tensor)]
    return found


def op_name(target) -> str:
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", None) or type(target).__name__


def per_axis(value, n: int) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            return tuple(value) * n
        return tuple(value)[-n:]
    return (value,) * n


def arg(args, kwargs, index, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


# ---------------------------------------------------------------- modules


def effect_of_module(m: nn.Module, args, kwargs, result, layouts: Layouts) -> Effect:
    x = _first_tensor(args, kwargs)
    outputs = tensors_in(result)
    if x is None:
        return Effect("neutral", layouts=[None] * len(outputs))
    if isinstance(m, _ConvNd):
        transposed = isinstance(m, _ConvTransposeNd)
        padding = (0,) * len(m.kernel_size) if isinstance(m.padding, str) else m.padding
        return _sliding("conv_transpose" if transposed else "conv", x, outputs[0], layouts, m.kernel_size,
                        m.stride, m.dilation, padding, transposed, channel_dim=True)
    if isinstance(m, POOLS):
        n = _pool_axes(m)
        stride = m.stride if m.stride is not None and m.stride != [] else m.kernel_size
        padding = getattr(m, "padding", 0)
        return _sliding("pool", x, outputs[0], layouts, per_axis(m.kernel_size, n), per_axis(stride or m.kernel_size, n),
                        per_axis(getattr(m, "dilation", 1), n), per_axis(padding, n))
    if isinstance(m, ADAPTIVE):
        return _adaptive(x, outputs[0], layouts, _pool_axes(m))
    if isinstance(m, FRACTIONAL_POOLS):
        n = len(per_axis(m.kernel_size, 3 if isinstance(m, nn.FractionalMaxPool3d) else 2))
        return _resampled(x, outputs[0], layouts, n, kernel=per_axis(m.kernel_size, n), kind="pool")
    if isinstance(m, UNPOOLS):
        return _unpool(args, kwargs, outputs[0], layouts)
    if isinstance(m, nn.Upsample):
        return _resampled(x, outputs[0], layouts, x.dim() - 2)
    if isinstance(m, (nn.Flatten, nn.Unflatten)):
        return _reshaped(x, outputs[0], layouts)
    if isinstance(m, nn.PixelShuffle):
        return _resampled(x, outputs[0], layouts, 2)
    if isinstance(m, nn.PixelUnshuffle):
        factor = m.downscale_factor
        return _sliding("pool", x, outputs[0], layouts, (factor, factor), (factor, factor), (1, 1), (0, 0),
                        channel_dim=True)
    if isinstance(m, nn.Unfold):
        return _unfold(x, outputs[0], layouts, m.kernel_size, m.stride, m.dilation, m.padding)
    if isinstance(m, nn.Fold):
        return _fold(x, outputs[0], layouts, m.kernel_size, m.stride, m.dilation, m.padding)
    if isinstance(m, (nn.Linear, nn.Bilinear)):
        return _linear(x, outputs[0], layouts)
    if isinstance(m, nn.Softmax2d):
        return _mixing("neutral", x, outputs[0], layouts, [-3])
    if isinstance(m, (nn.Softmax, nn.LogSoftmax, nn.Softmin)):
        return _mixing("neutral", x, outputs[0], layouts, [m.dim if m.dim is not None else -1])
    if isinstance(m, nn.MultiheadAttention):
        return _multihead(m, args, kwargs, outputs, layouts)
    if isinstance(m, POINTWISE_MODULES):
        if tuple(outputs[0].shape) != tuple(x.shape):  # a padding module
            return _padded(x, outputs[0], layouts)
        return _pointwise(args, kwargs, outputs, layouts)
    return _unknown(x, outputs, layouts)


def _pool_axes(m: nn.Module) -> int:
    """1, 2 or 3, from the torch.nn class a pool derives from (timm's ``MaxPool2dSame`` too)."""
    base = next(c for c in type(m).__mro__ if c.__module__.startswith("torch.nn") and c.__name__[-2].isdigit())
    return int(base.__name__[-2])


# ---------------------------------------------------------------- functions


def effect_of_function(target, args, kwargs, result, layouts: Layouts) -> Effect:
    name = op_name(target)
    outputs = tensors_in(result)
    x = _first_tensor(args, kwargs)
    if x is None:
        return Effect("neutral", layouts=[Layout.plain(tuple(t.shape)) for t in outputs])
    if target in CONV_FUNCTIONS or target in CONV_TRANSPOSE_FUNCTIONS:
        transposed = target in CONV_TRANSPOSE_FUNCTIONS
        weight = arg(args, kwargs, 1, "weight")
        n = weight.dim() - 2
        stride = arg(args, kwargs, 3, "stride", 1)
        padding = arg(args, kwargs, 4, "padding", 0)
        dilation = arg(args, kwargs, 7 if transposed else 5, "dilation", 1)
        padding = (0,) * n if isinstance(padding, str) else per_axis(padding, n)
        effect = _sliding("conv_transpose" if transposed else "conv", x, outputs[0], layouts, tuple(weight.shape[2:]),
                          per_axis(stride, n), per_axis(dilation, n), padding, transposed, channel_dim=True)
        effect.kernels = ()
        return effect
    if target in MAX_POOL_FUNCTIONS or target in AVG_POOL_FUNCTIONS or target in LP_POOL_FUNCTIONS:
        n = _function_axes(name, x)
        offset = 1 if target in LP_POOL_FUNCTIONS else 0
        kernel = arg(args, kwargs, 1 + offset, "kernel_size")
        stride = arg(args, kwargs, 2 + offset, "stride") or kernel
        padding = 0 if target in LP_POOL_FUNCTIONS else arg(args, kwargs, 3, "padding", 0)
        dilation = arg(args, kwargs, 4, "dilation", 1) if target in MAX_POOL_FUNCTIONS else 1
        return _sliding("pool", x, outputs[0], layouts, per_axis(kernel, n), per_axis(stride, n),
                        per_axis(dilation, n), per_axis(padding, n), outputs=outputs)
    if target in ADAPTIVE_FUNCTIONS:
        return _adaptive(x, outputs[0], layouts, _function_axes(name, x))
    if target in RESAMPLE_FUNCTIONS:
        return _resampled(x, outputs[0], layouts, x.dim() - 2)
    if target in UNPOOL_FUNCTIONS:
        return _unpool(args, kwargs, outputs[0], layouts)
    if target in (F.pixel_shuffle, torch.pixel_shuffle):
        return _resampled(x, outputs[0], layouts, 2)
    if target in (F.pixel_unshuffle, torch.pixel_unshuffle):
        factor = arg(args, kwargs, 1, "downscale_factor")
        return _sliding("pool", x, outputs[0], layouts, (factor, factor), (factor, factor), (1, 1), (0, 0),
                        channel_dim=True)
    if target is F.unfold:
        return _unfold(x, outputs[0], layouts, arg(args, kwargs, 1, "kernel_size"), arg(args, kwargs, 4, "stride", 1),
                       arg(args, kwargs, 2, "dilation", 1), arg(args, kwargs, 3, "padding", 0))
    if target is F.fold:
        return _fold(x, outputs[0], layouts, arg(args, kwargs, 2, "kernel_size"), arg(args, kwargs, 5, "stride", 1),
                     arg(args, kwargs, 3, "dilation", 1), arg(args, kwargs, 4, "padding", 0))
    if name == "unfold" and not _is_function(target):  # Tensor.unfold(dim, size, step)
        return _tensor_unfold(x, outputs[0], layouts, arg(args, kwargs, 1, "dimension"), arg(args, kwargs, 2, "size"),
                              arg(args, kwargs, 3, "step"))
    if name in UNBOUNDED_FUNCTIONS:
        return _unbounded(x, outputs, layouts)
    if target is operator.getitem:
        return _getitem(x, args[1], outputs, layouts)
    if name in RESHAPES:
        return _reshaped(x, outputs[0], layouts)
    if name in PERMUTES:
        return _permuted(name, x, args, kwargs, outputs[0], layouts)
    if name in CONCATENATIONS:
        return _concatenated(name, args, kwargs, outputs[0], layouts)
    if name in SPLITS:
        return _split(x, args, kwargs, outputs, layouts, name)
    if name in ATTENTIONS:
        return _attention(args, kwargs, outputs, layouts)
    if name in MATMULS or target is operator.matmul:
        return _matmul(name, target, args, kwargs, outputs, layouts)
    if name in SOFTMAXES:
        return _mixing("neutral", x, outputs[0], layouts, [arg(args, kwargs, 1, "dim", -1)])
    if name in REDUCTIONS:
        return _reduction(name, x, args, kwargs, outputs, layouts)
    if name.startswith("fft") or getattr(target, "__module__", "") == "torch._C._fft":
        return _fft(x, args, kwargs, outputs, layouts)
    if name == "pad":
        return _padded(x, outputs[0], layouts)
    if name.rstrip("_") in POINTWISE or name in POINTWISE:
        return _pointwise(args, kwargs, outputs, layouts)
    return _unknown(x, outputs, layouts)


def _padded(x, out, layouts: Layouts) -> Effect:
    """Padding adds positions at the borders: each axis keeps its dimension, resized."""
    layout = layouts.of(x)
    if layout.rank != out.dim():
        return _unknown(x, [out], layouts)
    dims = []
    for pieces, size, new in zip(layout.dims, layout.shape, out.shape):
        carried = [p for p in pieces if p.spatial]
        if size == new:
            dims.append(pieces)
        elif len(pieces) == 1 and carried:
            dims.append(lay.pieces(carried[0].axis, 1, new))
        elif carried:
            return _unknown(x, [out], layouts)
        else:
            dims.append(lay.pieces(FEATURES, 1, new))
    return Effect("neutral", layouts=[Layout(tuple(dims), tuple(out.shape))])


def _function_axes(name: str, x) -> int:
    """The spatial axes of ``max_pool2d``, ``adaptive_avg_pool3d``...: the digit before "d"."""
    found = re.search(r"([123])d", name)
    return int(found.group(1)) if found else x.dim() - 2


def _is_function(target) -> bool:
    return not isinstance(target, str) and not getattr(target, "__qualname__", "").startswith(("Tensor.", "TensorBase."))


def _first_tensor(args, kwargs=None):
    for a in (*args, *(kwargs or {}).values()):
        if isinstance(a, torch.Tensor):
            return a
        if isinstance(a, (tuple, list)):
            found = _first_tensor(a)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------- the semantics


def _sliding(kind, x, out, layouts: Layouts, kernel, stride, dilation, padding, transposed=False,
             channel_dim=False, outputs=None) -> Effect:
    """A conv or pool over the last len(kernel) dimensions of ``x``."""
    n = len(kernel)
    layout = layouts.of(x)
    if x.dim() < n + 1:
        return _unknown(x, outputs or [out], layouts)
    dims = list(range(x.dim() - n, x.dim()))
    out_sizes = tuple(out.shape[-n:])
    covers = [_covers_whole(x.shape[d], o, k, dl, p) for d, o, k, dl, p in
              zip(dims, out_sizes, kernel, per_axis(dilation, n), per_axis(padding, n))]
    try:
        op, out_layout = lay.slide(layout, dims, kernel, stride, per_axis(dilation, n), out_sizes, layouts.ndim,
                                   transposed, covers)
    except LayoutError:
        return _unknown(x, outputs or [out], layouts)
    if channel_dim and x.dim() == n + 2 and out.dim() == n + 2:
        out_layout = out_layout.with_dim(1, lay.pieces(FEATURES, 1, out.shape[1]), out.shape[1])
    elif out_layout.shape != tuple(out.shape):
        out_layout = Layout(out_layout.dims[:1] + (lay.pieces(FEATURES, 1, out.shape[1]),) + out_layout.dims[2:],
                            tuple(out.shape)) if out.dim() == x.dim() else None
    extra = [out_layout] * (len(outputs) - 1) if outputs else []  # max_pool's indices
    return Effect(kind, op, [out_layout, *extra], strides=tuple(stride), kernels=tuple(kernel))


def _bounded_axes(op: rf.Window, ndim: int) -> bool:
    return any(a not in op.unbounded and (op.kernel[a] > 1 or op.stride[a] != 1) for a in range(ndim))


def _covers_whole(size_in: int, size_out: int, kernel: int, dilation: int, padding: int) -> bool:
    """One output position whose unpadded window is the whole input map: a fixed
    ``AvgPool2d(7)`` on a 7x7 map, a 7x7 conv on it (a Linear written as a conv). A padded
    window that happens to reach the last map (a stride-2 chain ending at 1x1) is not: it
    is the layer the paper calls underutilized."""
    extent = dilation * (int(kernel) - 1) + 1
    return size_out == 1 and size_in > 1 and int(padding) == 0 and extent >= size_in


def _adaptive(x, out, layouts: Layouts, n: int) -> Effect:
    """Adaptive pooling: to one position it is global; to the same size it is nothing; to a
    divisor it is a window of in/out; otherwise its uneven bins see the whole axis."""
    sizes_in, sizes_out = tuple(x.shape[-n:]), tuple(out.shape[-n:])
    if all(o == 1 for o in sizes_out) or any(i % o for i, o in zip(sizes_in, sizes_out)):
        effect = _sliding("pool", x, out, layouts, sizes_in, sizes_in, (1,) * n, (0,) * n)
        if effect.kind != "unknown":
            effect.kind, effect.op = "global", _all_unbounded(layouts.ndim, layouts.of(x), x.dim() - n)
        return effect
    factors = tuple(i // o for i, o in zip(sizes_in, sizes_out))
    if all(f == 1 for f in factors):
        return _pointwise((x,), {}, [out], layouts)
    return _sliding("pool", x, out, layouts, factors, factors, (1,) * n, (0,) * n)


def _all_unbounded(ndim: int, layout: Layout, first_dim: int):
    axes = layout.axes(range(first_dim, layout.rank))
    if not axes:
        return rf.NEUTRAL
    return rf.Window((1,) * ndim, (1,) * ndim, (1,) * ndim, unbounded=frozenset(axes))


def _resampled(x, out, layouts: Layouts, n: int, kernel=None, kind="resample") -> Effect:
    """Interpolation, PixelShuffle, fractional pooling: the jump scales by in / out."""
    layout = layouts.of(x)
    dims = list(range(x.dim() - n, x.dim()))
    try:
        op, out_layout = lay.resample(layout, dims, tuple(out.shape[-n:]), layouts.ndim)
    except LayoutError:
        return _unknown(x, [out], layouts)
    if kernel is not None:
        k = [1] * layouts.ndim
        for d, size in zip(dims, kernel):
            for axis in layout.axes([d]):
                k[axis] = int(size)
        op = rf.Window(tuple(k), op.stride, op.dilation)
    if out_layout.shape != tuple(out.shape):  # PixelShuffle: fewer channels
        out_layout = Layout(out_layout.dims[:1] + (lay.pieces(FEATURES, 1, out.shape[1]),) + out_layout.dims[2:],
                            tuple(out.shape)) if out.dim() == x.dim() else None
    return Effect(kind, op, [out_layout])


def _unpool(args, kwargs, out, layouts: Layouts) -> Effect:
    """MaxUnpool upsamples its input; the indices say where, but carry no pixels."""
    x = args[0] if args else kwargs["input"]
    effect = _resampled(x, out, layouts, out.dim() - 2)
    effect.sources = [x]
    return effect


def _reshaped(x, out, layouts: Layouts) -> Effect:
    """A reshape regroups pieces; one that merges the offsets inside blocks into channels
    completes a space-to-depth, a window of the block with stride the block."""
    try:
        layout = layouts.of(x).reshape(tuple(out.shape))
    except LayoutError:
        return _unknown(x, [out], layouts)
    op, layout = lay.consume_offsets(layout, layouts.ndim)
    return Effect("neutral" if op is rf.NEUTRAL else "pool", op, [layout])


def _permuted(name, x, args, kwargs, out, layouts: Layouts) -> Effect:
    rank = x.dim()
    order = list(range(rank))
    if name == "permute":
        dims = args[1:] if len(args) > 2 or not isinstance(arg(args, kwargs, 1, "dims"), (tuple, list)) \
            else arg(args, kwargs, 1, "dims")
        order = [int(d) % rank for d in dims]
    elif name in ("movedim", "moveaxis"):
        source, destination = per_axis(arg(args, kwargs, 1, "source"), 1), per_axis(arg(args, kwargs, 2, "destination"), 1)
        source = [int(s) % rank for s in (source if isinstance(source, tuple) else (source,))]
        destination = [int(d) % rank for d in (destination if isinstance(destination, tuple) else (destination,))]
        rest = [d for d in range(rank) if d not in source]
        order = [None] * rank
        for s, d in zip(source, destination):
            order[d] = s
        it = iter(rest)
        order = [o if o is not None else next(it) for o in order]
    elif rank >= 2:
        if name in ("transpose", "swapaxes", "swapdims"):
            i, j = int(arg(args, kwargs, 1, "dim0")) % rank, int(arg(args, kwargs, 2, "dim1")) % rank
        else:  # t, T, mT
            i, j = (rank - 2, rank - 1)
        if name == "T":
            order = list(reversed(order))
        else:
            order[i], order[j] = order[j], order[i]
    return Effect("neutral", layouts=[layouts.of(x).permute(order)])


def _concatenated(name, args, kwargs, out, layouts: Layouts) -> Effect:
    parts = args[0] if args else kwargs.get("tensors")
    parts = [p for p in parts if isinstance(p, torch.Tensor)]
    dim = arg(args, kwargs, 1, "dim", 0)
    first = layouts.of(parts[0])
    if name == "stack":
        dim = int(dim) % (first.rank + 1)
        dims = first.dims[:dim] + (lay.pieces(FEATURES, 1, len(parts)),) + first.dims[dim:]
        return Effect("neutral", layouts=[Layout(dims, tuple(out.shape))])
    if name not in ("cat", "concat", "concatenate") or first.rank != out.dim():
        return Effect("neutral", layouts=[_aligned(parts, out, layouts)])
    dim = int(dim) % first.rank
    focus = _space_to_depth_by_slices(parts, dim, layouts)
    if focus is not None:
        return focus
    carried = tuple(dict.fromkeys(p for part in parts for p in layouts.of(part).dims[dim] if p.spatial))
    if not carried:
        return Effect("neutral", layouts=[first.with_dim(dim, lay.pieces(FEATURES, 1, out.shape[dim]), out.shape[dim])])
    if prod(p.size for p in carried) == out.shape[dim]:
        return Effect("neutral", layouts=[first.with_dim(dim, carried, out.shape[dim])])
    # positions plus extra entries (a class token before the patches)
    tokens = lay.Piece(lay.TOKENS, 1, out.shape[dim], _untokened(carried))
    return Effect("neutral", layouts=[first.with_dim(dim, (tokens,), out.shape[dim])])


def _untokened(carried) -> tuple:
    """The positions a dimension holds, through earlier class tokens."""
    return tuple(q for p in carried for q in (p.parts or (p,)))


def _space_to_depth_by_slices(parts, dim: int, layouts: Layouts) -> Effect | None:
    """YOLOv5's Focus: ``cat([x[..., ::2, ::2], x[..., 1::2, ::2], ...], 1)`` is a 2x2 patchify
    of ``x``: the slices' offsets, side by side in channels, span the block."""
    records = [layouts.slices.get(id(p)) for p in parts]
    if any(r is None for r in records) or len({id(r[0]) for r in records}) != 1:
        return None
    source, steps, _ = records[0]
    if any(r[1] != steps for r in records) or len({tuple(sorted(r[2].items())) for r in records}) < 2:
        return None
    src_layout = layouts.of(source)
    if any(p.spatial for p in src_layout.dims[dim]):
        return None
    kernel, stride = [1] * layouts.ndim, [1] * layouts.ndim
    for d, step in steps.items():
        offsets = {r[2][d] for r in records if d in r[2]}
        for axis in src_layout.axes([d]):
            kernel[axis] = max(offsets) - min(offsets) + 1
            stride[axis] = step
    first = layouts.of(parts[0])
    out_shape = list(first.shape)
    out_shape[dim] = sum(p.shape[dim] for p in parts)
    out_layout = first.with_dim(dim, lay.pieces(FEATURES, 1, out_shape[dim]), out_shape[dim])
    op = rf.Window(tuple(kernel), tuple(stride), (1,) * layouts.ndim)
    return Effect("pool", op, [out_layout], sources=[source])


def _aligned(parts, out, layouts: Layouts) -> Layout:
    """The output of a broadcasting op: each dimension from the operand that carries
    positions there with the output's size (an SE gate's (N, C, 1, 1) carries none)."""
    shape = tuple(out.shape)
    rank = len(shape)
    part_layouts = [layouts.of(part) for part in parts]  # once per op, not once per dimension
    dims = []
    for i, size in enumerate(shape):
        chosen = None
        for layout in part_layouts:
            j = i - (rank - layout.rank)
            if 0 <= j < layout.rank and layout.shape[j] == size and any(p.spatial or p.axis == lay.BATCH for p in layout.dims[j]):
                chosen = layout.dims[j]
                break
        dims.append(lay.pieces(FEATURES, 1, size) if chosen is None else chosen)
    return Layout(tuple(dims), shape)


def _pointwise(args, kwargs, outputs, layouts: Layouts) -> Effect:
    parts = tensors_in(args, kwargs)
    return Effect("neutral", layouts=[_aligned(parts, out, layouts) for out in outputs])


def _unknown(x, outputs, layouts: Layouts) -> Effect:
    """An op rflint does not know: its positions are guessed by shape (and reported)."""
    parts = [x] if x is not None else []
    return Effect("unknown", layouts=[_aligned(parts, out, layouts) for out in outputs])


def _unbounded(x, outputs, layouts: Layouts) -> Effect:
    """Data-dependent sampling or gathering: any position may be read."""
    axes = layouts.of(x).axes()
    if not axes:
        return _pointwise((x,), {}, outputs, layouts)
    op = rf.Window((1,) * layouts.ndim, (1,) * layouts.ndim, (1,) * layouts.ndim, unbounded=frozenset(axes))
    return Effect("global", op, [_aligned([x], out, layouts) for out in outputs])


def _getitem(x, index, outputs, layouts: Layouts) -> Effect:
    """Indexing: an int drops a dimension, a slice crops it, a step subsamples it."""
    layout = layouts.of(x)
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, torch.Tensor) or isinstance(i, list) for i in index):
        return _unbounded(x, outputs, layouts) if layout.spatial else _pointwise((x,), {}, outputs, layouts)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        explicit = sum(1 for i in index if i is not None and i is not Ellipsis)
        index = index[:at] + (slice(None),) * (x.dim() - explicit) + index[at + 1:]
    dims: list = []
    stride = [1] * layouts.ndim
    steps, offsets = {}, {}
    source_dim = 0
    out = outputs[0]
    extra_tokens = False  # only the class tokens taken: they hold no position of their own
    for item in index:
        if item is None:
            dims.append(())
            continue
        if source_dim >= layout.rank:
            return _unknown(x, outputs, layouts)
        pieces = layout.dims[source_dim]
        size = layout.shape[source_dim]
        carried = [p for p in pieces if p.spatial]
        parts = _untokened(carried)
        extras = size - prod(p.size for p in parts) if any(p.axis == lay.TOKENS for p in carried) else 0
        if isinstance(item, int):
            extra_tokens |= item % size < extras
            source_dim += 1
            continue
        if not isinstance(item, slice):
            return _unknown(x, outputs, layouts)
        start, stop, step = item.indices(size)
        length = len(range(start, stop, step))
        if length == size:
            dims.append(pieces)
        elif extras and length == size - extras:
            dims.append(parts)  # the class token cut off again
        elif extras and start == 0 and stop <= extras:
            extra_tokens = True
            dims.append(lay.pieces(FEATURES, 1, length))
        elif len(carried) == 1 and len(pieces) == 1:
            if step > 1:
                stride[carried[0].axis] = step
                steps[source_dim], offsets[source_dim] = step, start
            dims.append(lay.pieces(carried[0].axis, 1, length))
        elif carried:
            return _unknown(x, outputs, layouts)
        else:
            dims.append(lay.pieces(FEATURES, 1, length))
        source_dim += 1
    dims.extend(layout.dims[source_dim:])
    out_layout = Layout(tuple(dims), tuple(out.shape)) if len(dims) == out.dim() else None
    if extra_tokens:
        return _class_tokens(layout, out_layout, layouts.ndim)
    if steps:
        layouts.slices[id(out)] = (x, steps, dict(offsets))
        op = rf.Window((1,) * layouts.ndim, tuple(stride), (1,) * layouts.ndim)
        return Effect("pool", op, [out_layout])
    return Effect("neutral", layouts=[out_layout])


def _class_tokens(layout: Layout, out_layout: Layout | None, ndim: int) -> Effect:
    """The class tokens cut out of a TOKENS dimension: a parameter that only attention has
    written into, so they see every position or none, never a patch's bounded field (the
    tensor they were cut from carries one through its residual path). Unbounded."""
    axes = frozenset(a for d in layout.dims for p in d if p.axis == lay.TOKENS for a in p.axes)
    op = rf.Window((1,) * ndim, (1,) * ndim, (1,) * ndim, unbounded=axes)
    return Effect("global", op, [out_layout])


def _split(x, args, kwargs, outputs, layouts: Layouts, name) -> Effect:
    layout = layouts.of(x)
    dim = int(arg(args, kwargs, 1 if name == "unbind" else 2, "dim", 0)) % max(layout.rank, 1)
    carried = [p for p in layout.dims[dim] if p.spatial] if layout.rank else []
    result = []
    for out in outputs:
        if name == "unbind":
            result.append(Layout(layout.dims[:dim] + layout.dims[dim + 1:], tuple(out.shape)))
        elif carried:
            return _unknown(x, outputs, layouts)
        else:
            result.append(layout.with_dim(dim, lay.pieces(FEATURES, 1, out.shape[dim]), out.shape[dim]))
    return Effect("neutral", layouts=result)


def _mixing(kind, x, out, layouts: Layouts, dims, keep=True) -> Effect:
    """Every output position along ``dims`` reads every input position there (softmax keeps
    the dimension; a reduction removes it)."""
    layout = layouts.of(x)
    dims = [int(d) % layout.rank for d in dims] if layout.rank else []
    mixes = lay.mixed(layout, dims)
    if keep:
        out_layout = layout if layout.shape == tuple(out.shape) else _aligned([x], out, layouts)
    else:
        kept = [d for d in range(layout.rank) if d not in dims]
        out_layout = Layout(tuple(layout.dims[d] for d in kept), tuple(layout.shape[d] for d in kept))
        if out_layout.shape != tuple(out.shape):  # keepdim
            out_layout = out_layout.reshape(tuple(out.shape)) if prod(out.shape) == prod(out_layout.shape) else None
    if out_layout is None:
        return _unknown(x, [out], layouts)
    op, out_layout = lay.mixing_op(mixes, out_layout, layouts.ndim, layout)
    if op is not rf.NEUTRAL:
        kind = "global" if isinstance(op, rf.Window) and op.unbounded and not _bounded_axes(op, layouts.ndim) \
            else kind if kind != "neutral" else "attention" if keep else "pool"
    return Effect(kind, op, [out_layout])


def _reduction(name, x, args, kwargs, outputs, layouts: Layouts) -> Effect:
    dims = arg(args, kwargs, 1, "dim")
    if name in ("cumsum", "cumprod", "cummax", "cummin", "sort", "argsort", "topk"):
        dims = arg(args, kwargs, 1 if name != "topk" else 2, "dim", -1)
        keep = True
    else:
        keep = bool(arg(args, kwargs, 2, "keepdim", False)) and dims is not None
    if dims is None:
        dims = list(range(x.dim()))
    dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
    if not all(isinstance(d, int) for d in dims):
        return _unknown(x, outputs, layouts)
    effect = _mixing("neutral", x, outputs[0], layouts, dims, keep=keep or outputs[0].dim() == x.dim())
    effect.layouts = effect.layouts * len(outputs)
    return effect


def _fft(x, args, kwargs, outputs, layouts: Layouts) -> Effect:
    """A Fourier transform mixes every position along the dimensions it transforms."""
    dims = arg(args, kwargs, 2, "dim")
    if dims is None:
        dims = [-1] if not any(c.isdigit() for c in str(arg(args, kwargs, 99, "n", ""))) else [-2, -1]
    dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
    return _mixing("neutral", x, outputs[0], layouts, dims, keep=True)


def _linear(x, out, layouts: Layouts) -> Effect:
    """A Linear mixes its input's last dimension: channels (pointwise, a 1x1 conv in a
    channels-last block), or tokens of positions (an MLP-Mixer's token MLP)."""
    layout = layouts.of(x)
    last = layout.dims[-1] if layout.rank else ()
    if not any(p.spatial for p in last):
        out_layout = layout.with_dim(layout.rank - 1, lay.pieces(FEATURES, 1, out.shape[-1]), out.shape[-1]) \
            if layout.rank == out.dim() else None
        return Effect("linear", rf.Window((1,) * layouts.ndim, (1,) * layouts.ndim, (1,) * layouts.ndim), [out_layout])
    mixes = lay.mixed(layout, [layout.rank - 1])
    out_layout = layout.with_dim(layout.rank - 1, lay.pieces(FEATURES, 1, out.shape[-1]), out.shape[-1])
    op, out_layout = lay.mixing_op(mixes, out_layout, layouts.ndim, layout)
    return Effect("linear", op, [out_layout])


def _unfold(x, out, layouts: Layouts, kernel, stride, dilation, padding) -> Effect:
    """``F.unfold``: every k x k window (stride s) becomes a column of channels; the columns
    are the positions, merged into one dimension. Kernel == stride is space-to-depth."""
    kernel, stride, dilation, padding = (per_axis(v, 2) for v in (kernel, stride, dilation, padding))
    sizes = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                  zip(x.shape[-2:], padding, dilation, kernel, stride))
    layout = layouts.of(x)
    try:
        op, grid = lay.slide(layout, [x.dim() - 2, x.dim() - 1], kernel, stride, dilation, sizes, layouts.ndim)
    except LayoutError:
        return _unknown(x, [out], layouts)
    tokens = grid.dims[-2] + grid.dims[-1]
    out_layout = Layout(grid.dims[:-3] + (lay.pieces(FEATURES, 1, out.shape[-2]), tokens), tuple(out.shape))
    return Effect("pool", op, [out_layout], strides=stride, kernels=kernel)


def _fold(x, out, layouts: Layouts, kernel, stride, dilation, padding) -> Effect:
    """``F.fold``, unfold's adjoint: each output pixel sums the columns of the windows that
    cover it, like a transposed conv of that kernel and stride."""
    kernel, stride, dilation = (per_axis(v, 2) for v in (kernel, stride, dilation))
    layout = layouts.of(x)
    tokens = [p for p in layout.dims[-1] if p.spatial]
    if len(tokens) != 2 or len(layout.dims[-1]) != 2:
        return _unknown(x, [out], layouts)
    k, s, d = [1] * layouts.ndim, [1] * layouts.ndim, [1] * layouts.ndim
    for piece, kk, ss, dd in zip(tokens, kernel, stride, dilation):
        k[piece.axis], s[piece.axis], d[piece.axis] = int(kk), int(ss), int(dd)
    spatial = tuple(lay.pieces(p.axis, 1, n) for p, n in zip(tokens, out.shape[-2:]))
    out_layout = Layout(layout.dims[:-2] + (lay.pieces(FEATURES, 1, out.shape[-3]),) + spatial, tuple(out.shape))
    return Effect("conv_transpose", rf.Window(tuple(k), tuple(s), tuple(d), transposed=True), [out_layout],
                  strides=stride, kernels=kernel)


def _tensor_unfold(x, out, layouts: Layouts, dim, size, step) -> Effect:
    """``Tensor.unfold(dim, size, step)``: windows along ``dim``, their offsets in a new last
    dimension. Size == step splits the axis into blocks (a layout change); overlapping
    windows (HaloNet's halos) are a window of ``size`` with stride ``step``."""
    layout = layouts.of(x)
    dim = int(dim) % layout.rank
    carried = [p for p in layout.dims[dim] if p.spatial]
    count = out.shape[dim]
    if not carried:
        dims = layout.dims[:dim] + (lay.pieces(FEATURES, 1, count),) + layout.dims[dim + 1:]
        return Effect("neutral", layouts=[Layout(dims + (lay.pieces(FEATURES, 1, size),), tuple(out.shape))])
    piece = carried[0]
    if len(layout.dims[dim]) != 1 or piece.step != layout.finest_step(piece.axis):
        return _unknown(x, [out], layouts)
    if size == step and count * size == piece.size:
        dims = layout.dims[:dim] + (lay.pieces(piece.axis, size, count),) + layout.dims[dim + 1:]
        return Effect("neutral", layouts=[Layout(dims + (lay.pieces(piece.axis, 1, size),), tuple(out.shape))])
    kernel, stride = [1] * layouts.ndim, [1] * layouts.ndim
    kernel[piece.axis], stride[piece.axis] = int(size), int(step)
    covers = frozenset([piece.axis]) if count == 1 and size >= piece.size > 1 else frozenset()
    dims = layout.dims[:dim] + (lay.pieces(piece.axis, 1, count),) + layout.dims[dim + 1:]
    out_layout = Layout(dims + (lay.pieces(FEATURES, 1, size),), tuple(out.shape))
    return Effect("pool", rf.Window(tuple(kernel), tuple(stride), (1,) * layouts.ndim, unbounded=covers), [out_layout])


def _attention(args, kwargs, outputs, layouts: Layouts) -> Effect:
    """``F.scaled_dot_product_attention(q, k, v)``: each query reads every key and value
    position of its sequence; the output keeps the queries' positions."""
    q, k, v = (arg(args, kwargs, i, name) for i, name in enumerate(("query", "key", "value")))
    return _keyed_mixing(q, [k, v], [-2, -2], outputs, layouts)


def _multihead(m: nn.MultiheadAttention, args, kwargs, outputs, layouts: Layouts) -> Effect:
    q, k, v = (arg(args, kwargs, i, name) for i, name in enumerate(("query", "key", "value")))
    token = 1 if m.batch_first and q.dim() == 3 else 0
    return _keyed_mixing(q, [k, v], [token, token], outputs, layouts)


def _keyed_mixing(query, keyed, token_dims, outputs, layouts: Layouts) -> Effect:
    """Attention as one op: every output position reads the window of key positions (its
    whole sequence, or its window in Swin), whichever input the path came through."""
    q_layout = layouts.of(query)
    out = outputs[0]
    if q_layout.shape == tuple(out.shape):
        out_layout = q_layout
    elif q_layout.rank == out.dim():
        out_layout = q_layout.with_dim(q_layout.rank - 1, lay.pieces(FEATURES, 1, out.shape[-1]), out.shape[-1])
    else:
        out_layout = _aligned([query], out, layouts)
    key_layout = layouts.of(keyed[0])
    mixes = lay.mixed(key_layout, [token_dims[0]])
    op, _ = lay.mixing_op(mixes, out_layout, layouts.ndim, key_layout)
    extra = [Layout.plain(tuple(o.shape)) for o in outputs[1:]]  # attention weights
    return Effect(_kind_of_edges([op], layouts.ndim), op, [out_layout, *extra], sources=[query, *keyed])


def _kind_of_edges(edge_ops, ndim: int) -> str:
    """attention where positions are mixed (a window, or a whole axis: global), else neutral
    (a product that only broadcasts blocks over their positions)."""
    windows = [op for op in edge_ops if isinstance(op, rf.Window) and (op.unbounded or any(k > 1 for k in op.kernel))]
    if not windows:
        return "neutral"
    if all(op.unbounded and not _bounded_axes(op, ndim) for op in windows):
        return "global"
    return "attention"


def _matmul(name, target, args, kwargs, outputs, layouts: Layouts) -> Effect:
    """Matrix products as contractions: a letter summed over mixes the positions its
    dimension carries; an output dimension whose positions another output dimension already
    carries (the keys of ``q @ k.T``) is mixed into features."""
    operands = [a for a in tensors_in(args, kwargs)]
    if name == "einsum":
        equation = args[0] if isinstance(args[0], str) else kwargs.get("equation")
        spec = _einsum_spec(equation, operands)
    elif name == "linear":
        return _linear(operands[0], outputs[0], layouts)
    else:
        if name in ("baddbmm", "addmm", "addbmm"):
            operands = operands[1:3]
        spec = _matmul_spec(operands)
    if spec is None:
        return _unknown(operands[0] if operands else None, outputs, layouts)
    inputs, output = spec
    return _contraction(operands, inputs, output, outputs, layouts)


def _matmul_spec(operands):
    if len(operands) != 2 or operands[0].dim() < 2 or operands[1].dim() < 2:
        return None
    a, b = operands
    batch = max(a.dim(), b.dim()) - 2
    letters = string.ascii_letters[:batch]
    return [letters[batch - (a.dim() - 2):] + "xy", letters[batch - (b.dim() - 2):] + "yz"], letters + "xz"


def _einsum_spec(equation, operands):
    if not isinstance(equation, str) or "->" not in equation:
        return None
    left, output = equation.replace(" ", "").split("->")
    inputs = left.split(",")
    if len(inputs) != len(operands):
        return None
    free = [c for c in string.ascii_uppercase if c not in equation]
    rank = max([t.dim() - (len(s) - 3) for s, t in zip(inputs, operands) if "..." in s] or [0])
    ellipsis = "".join(free[:rank])
    inputs = [s.replace("...", ellipsis[rank - (t.dim() - (len(s) - 3)):]) for s, t in zip(inputs, operands)]
    return inputs, output.replace("...", ellipsis)


def _broadcast_over_finer(op, spec: str, layout: Layout, output: str, out_layout: Layout, ndim: int):
    """An operand indexed by blocks whose output is indexed by the blocks' fine positions
    (HaloNet's keys, one per block of queries): each block value is read by every position
    of the block, so along that axis the operand is upsampled by the block size."""
    factors = [1] * ndim
    for d, letter in enumerate(spec):
        if letter not in output:
            continue
        mine = [p for p in layout.dims[d] if p.axis >= 0]
        theirs = [p for p in out_layout.dims[output.index(letter)] if p.axis >= 0]
        if len(mine) == len(theirs) and all(a.axis == b.axis and a.size == b.size for a, b in zip(mine, theirs)):
            for a, b in zip(mine, theirs):
                if b.step > a.step and b.step % a.step == 0:
                    factors[a.axis] = b.step // a.step
    if all(f == 1 for f in factors):
        return op
    base = op if isinstance(op, rf.Window) else rf.Window((1,) * ndim, (1,) * ndim, (1,) * ndim)
    stride = tuple(Fraction(s) / f for s, f in zip(base.stride, factors))
    return rf.Window(base.kernel, stride, base.dilation, base.transposed, base.unbounded)


def _contraction(operands, inputs, output, outputs, layouts: Layouts) -> Effect:
    out = outputs[0]
    layouts_in = [layouts.of(t) for t in operands]
    out_dims = []
    seen: set[tuple[int, int]] = set()  # (axis, step) of the pieces the output carries
    folded: dict[int, list[int]] = {i: [] for i in range(len(operands))}
    for position, letter in enumerate(output):
        chosen, source = lay.pieces(FEATURES, 1, out.shape[position]), None
        for i, (spec, layout) in enumerate(zip(inputs, layouts_in)):
            if letter in spec and layout.shape[spec.index(letter)] == out.shape[position]:
                dim = layout.dims[spec.index(letter)]
                if any(p.spatial or p.axis == lay.BATCH for p in dim):
                    chosen, source = dim, i
                    break
        carried = {(p.axis, p.step) for p in chosen if p.spatial}
        if carried & seen and source is not None:  # the keys of q @ k.T: positions the queries already index
            folded[source].append(inputs[source].index(letter))
            chosen = lay.pieces(FEATURES, 1, out.shape[position])
        seen |= carried
        out_dims.append(chosen)
    out_layout = Layout(tuple(out_dims), tuple(out.shape))
    edge_ops, final, node_op = [], out_layout, rf.NEUTRAL
    for i, (spec, layout) in enumerate(zip(inputs, layouts_in)):
        summed = lay.mixed(layout, [d for d, letter in enumerate(spec) if letter not in output])
        op, rescaled = lay.mixing_op(summed, out_layout, layouts.ndim, layout)
        if rescaled != out_layout:
            final = rescaled
        edge_ops.append(_broadcast_over_finer(op, spec, layout, output, out_layout, layouts.ndim))
        if folded[i]:  # every output position now holds these positions, whichever operand it came from
            node_op, _ = lay.mixing_op(lay.mixed(layout, folded[i]), out_layout, layouts.ndim, layout)
    kind = _kind_of_edges([*edge_ops, node_op], layouts.ndim)
    return Effect(kind, node_op, [final] + [None] * (len(outputs) - 1), sources=list(operands),
                  edge_ops=tuple(edge_ops))
