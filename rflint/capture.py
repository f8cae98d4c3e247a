"""Stage 4: capture a model as a DAG of receptive-field ops.

torch.fx traces through custom blocks down to the layers that matter (convs, pooling,
resampling) and sees functional calls in ``forward``. An fx Interpreter then runs the graph
once on meta tensors at the input resolution: that gives every tensor's shape (to read
functional kernels, upsampling factors and which reshapes flatten space) and proves the
model runs at that resolution. Each node becomes a ``receptive_field.Node``. A model fx
cannot trace (Python control flow on shapes, ``len(x)``) is recorded while it runs
instead (``capture_fallback``), with the same leaves and the same classification.
"""

from __future__ import annotations

import linecache
import operator
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from types import BuiltinFunctionType, FunctionType
from typing import Any, Sequence

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.utils._python_dispatch import _get_current_dispatch_mode
from torch.utils._pytree import tree_leaves

from .core import receptive_field as rf
from .build import META
from .core.graph import GraphNode, LayerGraph
from .literals import origin_of
from .result import Site

POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
         nn.LPPool1d, nn.LPPool2d)
ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
            nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
LEAF_TYPES = (_ConvNd, *POOLS, *ADAPTIVE, nn.Upsample, nn.Linear, nn.Flatten, nn.Unflatten,
              nn.MultiheadAttention, nn.PixelShuffle, nn.PixelUnshuffle)

# Every spelling a call can take: fx records the function called in ``forward``; the
# fallback's TorchFunctionMode sees the same public function (F.max_pool2d, F.interpolate),
# or the builtin it aliases (F.conv2d is torch.conv2d, F.avg_pool2d is torch._C._nn.avg_pool2d).
SHAPE_PRESERVING = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.ReLU, nn.ReLU6,
                    nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU,
                    nn.ELU, nn.Mish, nn.PReLU, nn.Identity, nn.Dropout, nn.Dropout2d, nn.Hardtanh)
SHAPE_PRESERVING_FUNCTIONS = {
    F.relu, F.relu6, F.hardswish, F.hardsigmoid, F.silu, F.gelu, F.sigmoid, F.tanh, F.mish, F.leaky_relu,
    F.elu, F.layer_norm, F.batch_norm, F.group_norm, F.dropout, F.softmax, torch.relu, torch.sigmoid, torch.tanh,
}
CONCATENATIONS = {torch.cat, torch.concat, torch.concatenate}
SAME_SHAPE_ARITHMETIC = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul}
ADAPTIVE_AVERAGE = {nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3}
CONV_FUNCTIONS = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}
CONV_TRANSPOSE_FUNCTIONS = {F.conv_transpose1d: 1, F.conv_transpose2d: 2, F.conv_transpose3d: 3}
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
RESHAPES = {"view", "reshape", "flatten", "unflatten", "view_as", "reshape_as", "squeeze", "unsqueeze"}
REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "norm", "logsumexp", "prod",
              "nanmean", "nansum", "median", "all", "any", "var_mean", "std_mean", "argmax", "argmin"}
PLAIN_TENSORS = (torch.Tensor, nn.Parameter)
ATTENTION = re.compile(r"attention|attn", re.IGNORECASE)
# Ops known to mix no spatial positions: they are neutral and not worth reporting.
POINTWISE = {
    "add", "sub", "mul", "truediv", "div", "floordiv", "neg", "pow", "matmul", "iadd", "imul",
    "cat", "concat", "stack", "chunk", "split", "tensor_split", "unbind", "getitem", "getattr",
    "size", "dim", "contiguous", "clone", "detach", "to", "type", "float", "half", "double",
    "permute", "transpose", "swapaxes", "expand", "expand_as", "repeat", "sigmoid", "tanh",
    "relu", "relu6", "gelu", "silu", "hardswish", "hardsigmoid", "mish", "softplus", "elu",
    "leaky_relu", "hardtanh", "clamp", "clamp_min", "clamp_max", "clip", "abs", "exp", "log",
    "sqrt", "rsqrt", "reciprocal", "softmax", "log_softmax", "sigmoid_", "relu_", "mul_", "add_",
    "div_", "batch_norm", "layer_norm", "group_norm", "instance_norm", "dropout", "dropout2d",
    "drop_path", "stochastic_depth", "_assert", "pad", "linear", "normalize", "channel_shuffle", "where", "masked_fill",
    "square", "sign", "erf", "tanh_", "hardswish_", "zeros_like", "ones_like", "roll",
    "eq", "ne", "lt", "gt", "le", "ge", "and_", "or_", "rms_norm", "setitem",
}


def is_leaf(m: nn.Module) -> bool:
    """A layer whose spatial behaviour rflint knows, or a torch.nn module with no children.

    Both captures stop here and record the module as one node; anything else (timm's
    registered leaf modules too, some of which hold convs) is followed inside.
    """
    if isinstance(m, LEAF_TYPES):
        return True
    return type(m).__module__.startswith("torch.nn") and not isinstance(m, nn.Sequential) and not any(True for _ in m.children())


PLAIN_ARGUMENTS = frozenset({int, float, bool, str, type(None)})
FUNCTION_TYPES = (BuiltinFunctionType, FunctionType)


def is_torch_function(target) -> bool:
    """True for a function (``torch.flatten``, ``F.relu``), never for a Tensor method:
    those are method descriptors, or Python functions defined on the Tensor class."""
    return type(target) in FUNCTION_TYPES and not target.__qualname__.startswith(("Tensor.", "TensorBase."))


class LayerProxy(fx.Proxy):
    """fx's Proxy, except that a torch function called on it is recorded without fx's
    check against torch's table of Tensor methods, which is built on first use (7-13 ms,
    more than a whole ResNet-18 takes)."""

    @classmethod
    def __torch_function__(cls, orig_method, types, args=None, kwargs=None):
        if not is_torch_function(orig_method):
            return super().__torch_function__(orig_method, types, args, kwargs)
        tracer = next(a.tracer for a in tree_leaves((args, kwargs)) if isinstance(a, fx.Proxy))
        return tracer.create_proxy("call_function", orig_method, args or (), kwargs or {})


class LayerTracer(fx.Tracer):
    """Traces through custom blocks; stops at layers whose spatial behaviour rflint knows.

    fx's own stack traces cost a formatted traceback per node (and import torch.export to
    filter it): only functional calls need a location, the innermost frame outside torch,
    kept in ``node.meta["called_at"]``. Modules are located by where they were built.
    """

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return is_leaf(m)

    def call_module(self, m, forward, args, kwargs):
        """fx's, without the scope and module-stack bookkeeping kept for node metadata
        rflint never reads."""
        if not is_leaf(m):
            return forward(*args, **kwargs)
        return self.create_proxy("call_module", self.path_of_module(m), args, kwargs)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return LayerProxy(node, self)

    def create_arg(self, a):
        """The arguments nearly every call has, without fx's chain of isinstance checks."""
        kind = type(a)
        if kind is LayerProxy:
            return a.node
        if kind in PLAIN_ARGUMENTS:
            return a
        if kind is tuple:
            return tuple([self.create_arg(element) for element in a])
        return super().create_arg(a)

    parameter_names: dict[int, str] | None = None  # filled on the first parameter used outside a leaf

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        """fx's lookup, by a dict: fx scans every parameter of the model on each access."""
        if not isinstance(attr_val, nn.Parameter):
            return super().getattr(attr, attr_val, parameter_proxy_cache)
        if self.parameter_names is None:
            self.parameter_names = {id(p): name for name, p in self.root.named_parameters()}
        name = self.parameter_names.get(id(attr_val))
        if name is None:
            return super().getattr(attr, attr_val, parameter_proxy_cache)
        if name not in parameter_proxy_cache:
            parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
        return parameter_proxy_cache[name]

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        """fx's node, its arguments set once it exists: ``Graph.create_node`` walks every
        argument looking for raw SymInts to warn about (12 % of a trace), and a symbolic
        trace on meta tensors makes none."""
        node = super().create_node(kind, target, (), {}, name, type_expr)
        if args:
            node.args = args
        if kwargs:
            node.kwargs = kwargs
        if kind in ("call_function", "call_method"):
            frame = sys._getframe(1)
            while frame is not None and (is_torch_file(frame.f_code.co_filename) or frame.f_code.co_filename == __file__):
                frame = frame.f_back
            if frame is not None:
                node.meta["called_at"] = (frame.f_code.co_filename, frame.f_lineno)
        return node


def trace(model: nn.Module) -> tuple[nn.Module, fx.Graph]:
    """The graph and the module holding its submodules (no GraphModule: its code
    generation and compilation are not needed to run the graph once)."""
    tracer = LayerTracer()
    graph = tracer.trace(model)
    root = tracer.root
    # fx's patches keep the tracer in a reference cycle: emptied, it no longer holds the
    # model, which refcounting then frees without a collector pass over its objects.
    tracer.__dict__.clear()
    return root, graph


def _per_axis(value, ndim: int) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            return tuple(value) * ndim
        return tuple(value)[-ndim:]
    return (value,) * ndim


def _literal_sites(values: Sequence) -> tuple[Site | None, ...]:
    return tuple(_site(origin_of(v)) for v in values)


def _site(origin) -> Site | None:
    return None if origin is None else Site(origin.file, origin.line, origin.column, origin.end_line, origin.end_column)


def _window(kernel, stride, dilation, ndim, transposed=False) -> rf.Window:
    return rf.Window(
        kernel=tuple(int(k) for k in _per_axis(kernel, ndim)),
        stride=tuple(int(s) for s in _per_axis(stride, ndim)),
        dilation=tuple(int(d) for d in _per_axis(dilation, ndim)),
        transposed=transposed,
    )


def _arg(args, kwargs, index, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _spatial(shape, ndim) -> tuple[int, ...] | None:
    return tuple(shape[-ndim:]) if shape is not None and len(shape) >= ndim + 1 else None


def _keeps_space(in_shape, out_shape, ndim: int) -> bool:
    """True if every spatial axis of the input survives the reshape unchanged.

    An axis survives when some output axis has the same size and the same number of
    elements before it (channel shuffle keeps H and W; ViT's ``flatten(2)`` does not).
    """
    if in_shape is None or out_shape is None:
        return False
    prefix_out = {}
    total = 1
    for i, size in enumerate(out_shape):
        prefix_out[(total, size)] = i
        total *= size
    total, kept = 1, []
    for i, size in enumerate(in_shape):
        if i >= len(in_shape) - ndim:
            kept.append((total, size) in prefix_out)
        total *= size
    return all(kept)


def _shape(value):
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def tensors(*values) -> list[torch.Tensor]:
    if len(values) == 1 and isinstance(values[0], torch.Tensor):
        return [values[0]]  # nearly every call: no tree walk
    return [v for v in tree_leaves(values) if isinstance(v, torch.Tensor)]


def _first_tensor(args):
    for a in args:
        if isinstance(a, torch.Tensor):
            return a
        if isinstance(a, (tuple, list)):
            found = _first_tensor(a)
            if found is not None:
                return found
    return None


def _op_name(target) -> str:
    if isinstance(target, str):
        return target
    name = getattr(target, "__name__", None) or type(target).__name__
    return name


def classify_module(m: nn.Module, args, result, ndim):
    """(kind, op, stride values, kernel values) for a leaf module."""
    if isinstance(m, _ConvNd):
        transposed = isinstance(m, _ConvTransposeNd)
        window = _window(m.kernel_size, m.stride, m.dilation, ndim, transposed)
        return ("conv_transpose" if transposed else "conv"), window, m.stride, m.kernel_size
    if isinstance(m, POOLS):
        stride = m.stride if m.stride is not None else m.kernel_size
        window = _window(m.kernel_size, stride or m.kernel_size, getattr(m, "dilation", 1), ndim)
        return "pool", window, _per_axis(stride, ndim), _per_axis(m.kernel_size, ndim)
    if isinstance(m, (*ADAPTIVE, nn.MultiheadAttention)):
        return "global", rf.GLOBAL, (), ()
    if isinstance(m, nn.Upsample):
        return _resample(args, result, ndim)
    if isinstance(m, (nn.Flatten, nn.Unflatten)):
        return _reshape(args, result, ndim)
    if isinstance(m, nn.PixelShuffle):
        return "resample", _upsample_window(m.upscale_factor, ndim), (), ()
    if isinstance(m, nn.PixelUnshuffle):
        return "pool", _window(m.downscale_factor, m.downscale_factor, 1, ndim), (), ()
    if isinstance(m, nn.Linear):
        return "linear", rf.Window((1,) * ndim, (1,) * ndim, (1,) * ndim), (), ()
    if type(m).__module__.startswith("torch.nn"):
        return "neutral", rf.NEUTRAL, (), ()
    return "unknown", rf.NEUTRAL, (), ()


def _upsample_window(factor, ndim) -> rf.Window:
    return rf.Window((1,) * ndim, tuple(Fraction(1, int(f)) for f in _per_axis(factor, ndim)), (1,) * ndim)


def _resample(args, result, ndim):
    before, after = _spatial(_shape(_first_tensor(args)), ndim), _spatial(_shape(result), ndim)
    if before is None or after is None:
        return "unknown", rf.NEUTRAL, (), ()
    stride = tuple(Fraction(b, a) for b, a in zip(before, after))
    return "resample", rf.Window((1,) * ndim, stride, (1,) * ndim), (), ()


def _reshape(args, result, ndim):
    if _keeps_space(_shape(_first_tensor(args)), _shape(result), ndim):
        return "neutral", rf.NEUTRAL, (), ()
    return "global", rf.GLOBAL, (), ()


def _reduction(args, result, ndim):
    """A reduction over a spatial axis sees the whole image (``x.mean((2, 3))``)."""
    x = _first_tensor(args)
    if x is None or not isinstance(result, torch.Tensor):
        return "neutral", rf.NEUTRAL, (), ()
    if _spatial(x.shape, ndim) == _spatial(result.shape, ndim) and x.dim() == result.dim():
        return "neutral", rf.NEUTRAL, (), ()
    return "global", rf.GLOBAL, (), ()


def _getitem(args, result, ndim):
    """Strided slicing of spatial axes (``x[..., ::2, ::2]``) subsamples like a 1x1 stride."""
    x, index = args[0], args[1]
    if not isinstance(x, torch.Tensor) or _spatial(x.shape, ndim) == _spatial(_shape(result), ndim):
        return "neutral", rf.NEUTRAL, (), ()
    index = index if isinstance(index, tuple) else (index,)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (x.dim() - len(index) + 1) + index[at + 1:]
    index = tuple(index) + (slice(None),) * (x.dim() - len(index))
    if len(index) != x.dim() or not all(isinstance(i, slice) for i in index):
        return "unknown", rf.NEUTRAL, (), ()
    steps = tuple(i.step or 1 for i in index[-ndim:])
    if all(step == 1 for step in steps):  # a crop moves no receptive field
        return "neutral", rf.NEUTRAL, (), ()
    return "pool", _window(1, steps, 1, ndim), (), ()


def classify_function(target, args, kwargs, result, ndim):
    name = _op_name(target)
    if target in CONV_FUNCTIONS or target in CONV_TRANSPOSE_FUNCTIONS:
        transposed = target in CONV_TRANSPOSE_FUNCTIONS
        weight = _arg(args, kwargs, 1, "weight")
        stride = _arg(args, kwargs, 3, "stride", 1)
        dilation = _arg(args, kwargs, 7 if transposed else 5, "dilation", 1)
        kernel = tuple(weight.shape[2:])
        window = _window(kernel, stride, dilation, ndim, transposed)
        return ("conv_transpose" if transposed else "conv"), window, _per_axis(stride, ndim), ()
    if target in MAX_POOL_FUNCTIONS or target in AVG_POOL_FUNCTIONS or target in LP_POOL_FUNCTIONS:
        offset = 1 if target in LP_POOL_FUNCTIONS else 0
        kernel = _arg(args, kwargs, 1 + offset, "kernel_size")
        stride = _arg(args, kwargs, 2 + offset, "stride") or kernel
        dilation = _arg(args, kwargs, 4, "dilation", 1) if target in MAX_POOL_FUNCTIONS else 1
        return "pool", _window(kernel, stride, dilation, ndim), _per_axis(stride, ndim), _per_axis(kernel, ndim)
    if target in ADAPTIVE_FUNCTIONS or ATTENTION.search(name):
        return "global", rf.GLOBAL, (), ()
    if target in RESAMPLE_FUNCTIONS:
        return _resample(args, result, ndim)
    if target in (F.pixel_shuffle, torch.pixel_shuffle):
        return "resample", _upsample_window(_arg(args, kwargs, 1, "upscale_factor"), ndim), (), ()
    if target in (F.pixel_unshuffle, torch.pixel_unshuffle):
        factor = _arg(args, kwargs, 1, "downscale_factor")
        return "pool", _window(factor, factor, 1, ndim), (), ()
    if name in RESHAPES:
        return _reshape(args, result, ndim)
    if name in REDUCTIONS:
        return _reduction(args, result, ndim)
    if target is operator.getitem:
        return _getitem(args, result, ndim)
    if name.rstrip("_") in POINTWISE or name in POINTWISE or name.startswith("__"):
        return "neutral", rf.NEUTRAL, (), ()
    return "unknown", rf.NEUTRAL, (), ()


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def is_torch_file(file: str) -> bool:
    return file.startswith(_TORCH_DIR)


def line_site(file: str, line: int) -> Site:
    """A whole source line, from its first non-blank character."""
    text = linecache.getline(file, line)
    column = len(text) - len(text.lstrip()) + 1
    return Site(file, line, column, line, len(text.rstrip()) + 1)


def module_node(path: str | None, module: nn.Module, args, result, inputs: tuple[int, ...], ndim: int) -> GraphNode:
    """One call of a leaf module; ``path`` is None for a module outside the model's tree."""
    kind, op, strides, kernels = classify_module(module, args, result, ndim)
    return GraphNode(
        name=path or type(module).__name__,
        op_type=type(module).__name__,
        kind=kind,
        inputs=inputs,
        op=op,
        module_path=path,
        stride_literals=_literal_sites(strides),
        kernel_literals=_literal_sites(kernels),
    )


def function_node(name: str, target, args, kwargs, result, inputs: tuple[int, ...], ndim: int,
                  called_at: Site | None) -> GraphNode:
    """One call of a function or Tensor method."""
    kind, op, strides, kernels = classify_function(target, args, kwargs, result, ndim)
    return GraphNode(
        name=name,
        op_type=_op_name(target),
        kind=kind,
        inputs=inputs,
        op=op,
        called_at=called_at,
        stride_literals=_literal_sites(strides),
        kernel_literals=_literal_sites(kernels),
    )


class CallNames:
    """Names calls as fx names nodes (``getitem``, ``getitem_1``...), but counts only calls
    that make a tensor, which both captures see alike (fx also numbers ``x.shape[0]``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, target) -> str:
        base = _op_name(target)
        count = self.counts[base]
        self.counts[base] += 1
        return f"{base}_{count}" if count else base


class _Recorder(fx.Interpreter):
    """Runs the traced graph on meta tensors and classifies each node as it runs.

    Nodes that make no tensor (``x.shape[0]``, ``x.size(1) // 4``) are left out: a size
    carries no pixels, and linking through it would let a conv on a globally pooled vector
    (ECA's channel Conv1d after ``x.mean((2, 3)).view(x.shape[0], 1, -1)``) inherit the
    bounded field of ``x``.
    """

    def __init__(self, root: nn.Module, graph: fx.Graph, ndim: int):
        # Values are meta tensors of no size: freeing each after its last use is not worth the bookkeeping.
        super().__init__(root, graph=graph, garbage_collect_values=False)
        self.ndim = ndim
        self.index: dict[fx.Node, int] = {}
        self.nodes: list[GraphNode] = []
        self.call_names = CallNames()

    def run(self, x: torch.Tensor) -> Any:
        """fx's run without its progress bar, whose lock costs a millisecond on first use."""
        self.env, self.args_iter = {}, iter((x,))
        for node in self.graph.nodes:
            self.env[node] = self.run_node(node)
        return self.output

    def run_node(self, n: fx.Node):
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        result = self._same_shape(n, args)
        if result is None:
            result = getattr(self, n.op)(n.target, args, kwargs)  # fx's run_node, without fetching the args again
        if n.op == "output":
            self.output = result
            return result
        if n.op != "placeholder" and not tensors(result):
            return result
        if self._picks_from_recorded_container(n, args):
            self.index[n] = self.index[n.args[0]]
            return result
        inputs = tuple(self.index[i] for i in n.all_input_nodes if i in self.index)
        if n.op == "placeholder":
            captured = GraphNode(n.name, "input", "input", (), rf.NEUTRAL)
        elif n.op == "get_attr":
            captured = GraphNode(n.name, "constant", "constant", ())
        elif n.op == "call_module":
            captured = module_node(n.target, self.submodules[n.target], args, result, inputs, self.ndim)
        else:
            called_at = n.meta.get("called_at")
            captured = function_node(self.call_names(n.target), n.target, args, kwargs, result, inputs, self.ndim,
                                     line_site(*called_at) if called_at else None)
        self.index[n] = len(self.nodes)
        self.nodes.append(captured)
        return result

    def _same_shape(self, n: fx.Node, args):
        """The output of a node whose shape is known without running it (see
        ``known_output``), else None."""
        if n.op == "call_module" and len(args) == 1 and not n.kwargs and _is_meta(args[0]):
            return _module_output(self.submodules[n.target], args[0])
        if n.op == "call_function":
            return known_output(n.target, args, n.kwargs)
        return None

    def _picks_from_recorded_container(self, n: fx.Node, args) -> bool:
        """Taking an output of chunk, split or a module's tuple is no op (eager sees none)."""
        return (
            n.target in (operator.getitem, getattr)
            and not isinstance(args[0], torch.Tensor)
            and isinstance(n.args[0], fx.Node)
            and n.args[0] in self.index
        )


def _is_meta(x) -> bool:
    """A plain meta tensor (or parameter): a tensor subclass keeps its own ``__torch_function__``
    and makes its own outputs, so its ops run."""
    return type(x) in PLAIN_TENSORS and x.is_meta


def _empty(like: torch.Tensor, shape) -> torch.Tensor:
    """A meta tensor of ``like``'s dtype: ``Tensor.new_empty`` runs a Python decomposition
    on meta (5 us a call, ``torch.empty`` 1.4 us)."""
    return torch.empty(shape, dtype=like.dtype, device=META)


def known_output(target, args, kwargs) -> torch.Tensor | None:
    """A fresh meta tensor shaped like the output of ``target(*args, **kwargs)`` when the
    shape is known without running it, else None (the call then runs).

    Norms, activations, dropout and same-shape arithmetic keep their input's shape, and a
    concatenation adds up one axis; their meta kernels run through Python decompositions
    and would only cost time. An in-place call runs for real: its result must be its input.
    """
    if target in CONCATENATIONS:
        return _concatenation(args, kwargs)
    x = args[0] if args else None
    if not _is_meta(x) or kwargs.get("inplace") or any(a is True for a in args[1:]):
        return None
    if target in SHAPE_PRESERVING_FUNCTIONS and _norm_accepts(target, x, args, kwargs):
        return _empty(x, x.shape)
    if target in SAME_SHAPE_ARITHMETIC and len(args) == 2 and not kwargs:
        same = _same_shape_operand(x, args[1])
        return None if same is None else _empty(same, same.shape)
    return None


def _concatenation(args, kwargs) -> torch.Tensor | None:
    """``torch.cat`` of meta tensors equal in all but the joined axis (DenseNet's and
    Inception's branches); anything else (an empty 1-D operand, mixed dtypes) runs."""
    parts = args[0] if args else kwargs.get("tensors")
    dim = _arg(args, kwargs, 1, "dim", 0)
    if set(kwargs) - {"tensors", "dim"} or not isinstance(parts, (list, tuple)) or not parts \
            or not isinstance(dim, int) or not all(_is_meta(p) for p in parts):
        return None
    first = parts[0]
    rank = first.dim()
    if rank == 0 or not -rank <= dim < rank or any(p.dim() != rank or p.dtype != first.dtype for p in parts):
        return None
    dim %= rank
    others = [tuple(p.shape[:dim]) + tuple(p.shape[dim + 1:]) for p in parts]
    if any(shape != others[0] for shape in others):
        return None
    return _empty(first, (*first.shape[:dim], sum(p.shape[dim] for p in parts), *first.shape[dim + 1:]))


def _norm_accepts(function, x: torch.Tensor, args, kwargs) -> bool:
    """Whether a norm function would accept ``x``: a LayerNorm over (H, W) fails at another
    resolution, and rflint must not report (or verify a fix on) a model that cannot run."""
    if function is F.layer_norm:
        shape = tuple(_arg(args, kwargs, 1, "normalized_shape"))
        return tuple(x.shape[-len(shape):]) == shape
    if function is F.batch_norm:
        mean = _arg(args, kwargs, 1, "running_mean")
        return x.dim() >= 2 and (mean is None or tuple(mean.shape) == (x.shape[1],))
    if function is F.group_norm:
        return x.dim() >= 2 and x.shape[1] % _arg(args, kwargs, 1, "num_groups") == 0
    return True


def _norm_module_accepts(module: nn.Module, x: torch.Tensor) -> bool:
    """The same for norm modules (their own input checks, then their sizes)."""
    if isinstance(module, nn.LayerNorm):
        return tuple(x.shape[-len(module.normalized_shape):]) == tuple(module.normalized_shape)
    if isinstance(module, nn.modules.batchnorm._NormBase):
        try:
            module._check_input_dim(x)
        except ValueError:
            return False
        return x.shape[1] == module.num_features
    if isinstance(module, nn.GroupNorm):
        return x.dim() >= 2 and x.shape[1] == module.num_channels
    return True


def _module_output(module: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """A leaf module's output by its shape rule (norms, activations, Linear, adaptive
    average pools, convs), else None."""
    if isinstance(module, SHAPE_PRESERVING):
        return _empty(x, x.shape) if _norm_module_accepts(module, x) else None
    if _get_current_dispatch_mode() is not None:  # FlopCounterMode must see convs and matmuls
        return None
    if type(module) is nn.Linear and x.dim() >= 1 and x.shape[-1] == module.in_features:
        return _empty(x, (*x.shape[:-1], module.out_features))
    if isinstance(module, _ConvNd) and not isinstance(module, _ConvTransposeNd):
        return _conv_output(module, x)
    axes = ADAPTIVE_AVERAGE.get(type(module))
    if axes and x.dim() in (axes + 1, axes + 2):
        size = _per_axis(module.output_size, axes)
        return _empty(x, (*x.shape[:-axes], *(d if o is None else o for o, d in zip(size, x.shape[-axes:]))))
    return None


def _conv_output(conv: _ConvNd, x: torch.Tensor) -> torch.Tensor | None:
    """A batched conv's output by the formula of its documentation; anything the formula
    would not catch (wrong channels, an input smaller than the kernel) runs for real."""
    axes = len(conv.kernel_size)
    if x.dim() != axes + 2 or x.shape[1] != conv.in_channels or conv.padding_mode != "zeros":
        return None  # reflect / circular padding fails on small inputs
    padding = (0,) * axes if conv.padding == "valid" else conv.padding
    if padding == "same":
        size = tuple(x.shape[2:])
    else:
        size = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                     zip(x.shape[2:], padding, conv.dilation, conv.kernel_size, conv.stride))
    return _empty(x, (x.shape[0], conv.out_channels, *size)) if min(size) >= 1 else None


def _same_shape_operand(a: torch.Tensor, b) -> torch.Tensor | None:
    """``a + b`` where one side already has the result's shape (a residual add, SE's
    scaling); a mismatch is left to the real op, whose error says why the model fails."""
    if not _is_meta(b) or a.dtype != b.dtype:
        return None
    shape = _broadcast(a.shape, b.shape)
    return a if shape == a.shape else b if shape == b.shape else None


def _broadcast(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    """The broadcast shape of ``a`` and ``b`` (NumPy's rule), None if they do not broadcast;
    torch.broadcast_shapes runs through Python decompositions."""
    if len(a) < len(b):
        a, b = b, a
    b = (1,) * (len(a) - len(b)) + tuple(b)
    if any(x != y and x != 1 and y != 1 for x, y in zip(a, b)):
        return None
    return tuple(y if x == 1 else x for x, y in zip(a, b))


def input_spec(model: nn.Module) -> tuple[tuple[int, ...], int]:
    """(channel counts to try, spatial axes) for the model's input, from its first conv.

    A model that declares its channels (timm's ``in_chans``) is taken at its word: its
    first conv need not see the image (CSATv2's first conv reads 64 DCT coefficients).
    Otherwise the first conv built is the best guess, then RGB and grey images.
    """
    first = next((m for m in model.modules() if isinstance(m, _ConvNd)), None)
    if first is None:
        return (3, 1), 2
    declared = getattr(model, "in_chans", None)
    if isinstance(declared, int):
        return (declared,), len(first.kernel_size)
    guess = first.out_channels if isinstance(first, _ConvTransposeNd) else first.in_channels
    return tuple(dict.fromkeys((guess, 3, 1))), len(first.kernel_size)


def capture_fx(model: nn.Module, input_res: Sequence[int], channels: int) -> LayerGraph:
    """Trace ``model`` with fx and run the graph once on a meta input of size ``input_res``."""
    ndim = len(input_res)
    recorder = _Recorder(*trace(model), ndim)
    with torch.no_grad():
        recorder.run(torch.empty(1, channels, *input_res, device=META))
    return LayerGraph(recorder.nodes, ndim, _shape(recorder.output), "fx")


def capture(model: nn.Module, input_res: Sequence[int], channels: int) -> LayerGraph:
    """The fx capture, or the eager one if fx cannot trace or run the model.

    If the eager capture fails too, its error is raised: it comes from running the
    model's own code, so it says why the model does not run at ``input_res``.
    """
    try:
        return capture_fx(model, input_res, channels)
    except Exception:
        from .capture_fallback import capture_eager  # imported by the models that need it

        return capture_eager(model, input_res, channels)
