"""Capture a model as a DAG of receptive-field ops.

torch.fx traces through custom blocks down to the layers that matter (convs, pooling,
resampling) and sees functional calls in ``forward``. An fx Interpreter then runs the graph
once on meta tensors at the input resolution: that gives every tensor's shape (to read
functional kernels, upsampling factors and which reshapes flatten space) and proves the
model runs at that resolution. Each node becomes a ``receptive_field.Node``. A model fx
cannot trace (Python control flow on shapes, ``len(x)``) is recorded while it runs
instead (``capture_fallback``), with the same leaves and the same classification.
"""

from __future__ import annotations

import contextlib
import linecache
import operator
import os
import sys
from collections import Counter
from dataclasses import dataclass
from types import BuiltinFunctionType, FunctionType
from typing import Any, Sequence

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.utils._python_dispatch import _get_current_dispatch_mode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from rflint.frontends.torch.build import META
from rflint.frontends.torch.flops import counted_inside, function_flops, module_flops
from rflint.core.graph import GraphNode, LayerGraph
from rflint.core.layout import Layout
from rflint.source.literals import origin_of
from rflint.core.layers import Site
from rflint.frontends.torch.ops import LEAF_TYPES, PLAIN_ARGUMENTS, argument_tensors, Effect, Layouts, arg, effect_of_function, effect_of_module, op_name, per_axis, tensors_in as tensors

# Shapes known without running the op (see ``known_output``).
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
PLAIN_TENSORS = (torch.Tensor, nn.Parameter)
# The convs whose output the documented formula gives: a subclass with its own forward
# (timm's Conv2dSame pads by the input's size first) runs for real.
TORCH_CONV_FORWARDS = frozenset({nn.Conv1d.forward, nn.Conv2d.forward, nn.Conv3d.forward})


def is_leaf(m: nn.Module) -> bool:
    """A layer whose spatial behaviour rflint knows, or a torch.nn module with no children.

    Both captures stop here and record the module as one node; anything else (timm's
    registered leaf modules too, some of which hold convs) is followed inside.
    """
    if isinstance(m, LEAF_TYPES) or isinstance(m, torch.jit.ScriptModule):
        return True  # a scripted module cannot be traced through: it is one (unknown) op
    return type(m).__module__.startswith("torch.nn") and not isinstance(m, nn.Sequential) and not any(True for _ in m.children())


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

    def createarg(self, a):
        """The arguments nearly every call has, without fx's chain of isinstance checks."""
        kind = type(a)
        if kind is LayerProxy:
            return a.node
        if kind in PLAIN_ARGUMENTS:
            return a
        if kind is tuple:
            return tuple([self.createarg(element) for element in a])
        return super().createarg(a)

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


def _literal_sites(values: Sequence) -> tuple[Site | None, ...]:
    return tuple(_site(origin_of(v)) for v in values)


def _site(origin) -> Site | None:
    return None if origin is None else Site(origin.file, origin.line, origin.column, origin.end_line, origin.end_column)


def output_shapes(output) -> tuple:
    """The shape of each leaf of what the model returned (None for a leaf that is no tensor):
    what a fix may only grow along spatial axes (``fix/interface.py``)."""
    return tuple(tuple(leaf.shape) if isinstance(leaf, torch.Tensor) else None for leaf in tree_leaves(output))


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def is_torch_file(file: str) -> bool:
    return file.startswith(_TORCH_DIR)


def line_site(file: str, line: int) -> Site:
    """A whole source line, from its first non-blank character."""
    text = linecache.getline(file, line)
    column = len(text) - len(text.lstrip()) + 1
    return Site(file, line, column, line, len(text.rstrip()) + 1)


class CallNames:
    """Names calls as fx names nodes (``getitem``, ``getitem_1``...), but counts only calls
    that make a tensor, which both captures see alike (fx also numbers ``x.shape[0]``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, target) -> str:
        base = op_name(target)
        count = self.counts[base]
        self.counts[base] += 1
        return f"{base}_{count}" if count else base


class Recording:
    """The graph both captures build: its nodes, the node that produced each tensor, and
    each tensor's layout (all by the tensor's identity: every tensor seen is kept alive so
    no identity is reused).

    Nodes link through tensors only: a size (``x.shape[0]``) carries no pixels, and linking
    through it would let a conv on a globally pooled vector (ECA's channel Conv1d) inherit
    the bounded field of the map it was pooled from.
    """

    def __init__(self, ndim: int):
        self.ndim = ndim
        self.nodes: list[GraphNode] = []
        self.producer: dict[int, int] = {}
        self.layouts = Layouts(ndim)
        self.alive: list[torch.Tensor] = []
        self.call_names = CallNames()
        self.reading_input: set[int] = set()  # the nodes that depend on the input
        self.input_conv_ran = False  # a conv module reading the input took its channel count
        self.global_ops: Counter[str] = Counter()  # ops that reduced a map to one position, by op type
        self.input_shape: tuple[int, ...] = ()
        self.flops = 0  # of the convs, Linears, matrix products and attentions recorded (``flops.py``)

    @contextlib.contextmanager
    def noting_progress(self):
        """A failure says, as ``input_channels_accepted``, whether the model had already
        taken the input's channel count: trying another count would fail at that conv,
        or get the same shapes past it and meet the same error."""
        try:
            yield
        except Exception as error:
            error.input_channels_accepted = self.input_conv_ran
            raise

    def add(self, node: GraphNode, outputs, layouts: Sequence[Layout | None] = ()) -> None:
        index = len(self.nodes)
        for i, tensor in enumerate(tensors(outputs)):
            self.producer[id(tensor)] = index
            self.alive.append(tensor)
            self.layouts.set(tensor, layouts[i] if i < len(layouts) else None)
        self.nodes.append(node)

    def knows(self, tensor: torch.Tensor) -> bool:
        return id(tensor) in self.producer

    def add_input(self, name: str, x: torch.Tensor) -> None:
        self.input_shape = tuple(x.shape)
        self.reading_input.add(len(self.nodes))
        self.add(GraphNode(name, "input", "input", ()), x, [Layout.image(x.shape, self.ndim)])

    def add_module(self, path: str | None, module: nn.Module, args, kwargs, result) -> None:
        """One call of a leaf module; ``path`` is None for a module outside the model's tree."""
        effect = effect_of_module(module, args, kwargs, result, self.layouts)
        self.flops += module_flops(module, args, kwargs, result)
        reads_input = self._add(effect, path or type(module).__name__, type(module).__name__, (args, kwargs), result,
                                module_path=path)
        # a conv module takes exactly its in_channels (a functional conv's weight may be
        # made from the input, as anti-aliasing filters are: it takes any count)
        self.input_conv_ran = self.input_conv_ran or (reads_input and isinstance(module, _ConvNd))

    def add_function(self, target, args, kwargs, result, called_at: Site | None) -> None:
        """One call of a function or Tensor method."""
        effect = effect_of_function(target, args, kwargs, result, self.layouts)
        self.flops += function_flops(target, args, kwargs, result)
        self._add(effect, self.call_names(target), op_name(target), (args, kwargs), result, called_at=called_at)

    def _add(self, effect: Effect, name: str, op_type: str, arguments, result, **where) -> bool:
        """Record one op; whether it depends on the input."""
        sources = effect.sources if effect.sources is not None else argument_tensors(*arguments)
        inputs, edge_ops = [], []
        for i, tensor in enumerate(sources):
            index = self.producer.get(id(tensor))
            if index is not None and (effect.edge_ops is not None or index not in inputs):
                inputs.append(index)
                edge_ops.append(effect.edge_ops[i] if effect.edge_ops is not None else None)
        node = GraphNode(name, op_type, effect.kind, tuple(inputs), effect.op,
                         edge_ops=tuple(edge_ops) if effect.edge_ops is not None else None,
                         stride_literals=_literal_sites(effect.strides),
                         kernel_literals=_literal_sites(effect.kernels), **where)
        if self._reduces_to_one_position(arguments, result):
            self.global_ops[op_type] += 1
        reads_input = not self.reading_input.isdisjoint(inputs)
        if reads_input:
            self.reading_input.add(len(self.nodes))
        self.add(node, result, effect.layouts)
        return reads_input

    def _reduces_to_one_position(self, arguments, result) -> bool:
        """Whether the op turned an N x C x spatial map of several positions into one
        position per spatial axis (a global pool): a fix must keep it global (``fix/interface.py``)."""
        if not isinstance(result, torch.Tensor) or result.dim() != self.ndim + 2 or any(n != 1 for n in result.shape[2:]):
            return False
        source = next(iter(argument_tensors(*arguments)), None)
        return source is not None and source.dim() == result.dim() and max(source.shape[2:]) > 1

    def graph(self, outputs, method: str) -> LayerGraph:
        return LayerGraph(self.nodes, self.ndim, output_shapes(outputs), method, tuple(sorted(self.global_ops.items())),
                          self.input_shape, self.flops)


class _Recorder(fx.Interpreter):
    """Runs the traced graph on meta tensors and records each node as it runs."""

    def __init__(self, root: nn.Module, graph: fx.Graph, ndim: int):
        # Values are meta tensors of no size: freeing each after its last use is not worth the bookkeeping.
        super().__init__(root, graph=graph, garbage_collect_values=False)
        self.recording = Recording(ndim)

    def run(self, x: torch.Tensor) -> Any:
        """fx's run without its progress bar, whose lock costs a millisecond on first use."""
        self.env, self.args_iter = {}, iter((x,))
        for node in self.graph.nodes:
            self.env[node] = self.run_node(node)
        return self.output

    def run_node(self, n: fx.Node):
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        result = self._same_shape(n, args)
        if result is None and n.op in ("call_function", "call_module") and counted_inside(
                n.op, n.target if n.op == "call_function" else self.submodules[n.target]):
            with FlopCounterMode(display=False) as counter:
                result = getattr(self, n.op)(n.target, args, kwargs)
            self.recording.flops += counter.get_total_flops()
        elif result is None:
            result = getattr(self, n.op)(n.target, args, kwargs)  # fx's run_node, without fetching the args again
        if n.op == "output":
            self.output = result
            return result
        recording = self.recording
        if n.op != "placeholder" and not tensors(result):
            return result
        if n.target in (operator.getitem, getattr) and not isinstance(args[0], torch.Tensor) \
                and all(recording.knows(t) for t in tensors(result)):
            return result  # taking an output of chunk, split or a module's tuple is no op (eager sees none)
        if n.op == "placeholder":
            recording.add_input(n.name, result)
        elif n.op == "get_attr":
            recording.add(GraphNode(n.name, "constant", "constant", ()), result)
        elif n.op == "call_module":
            recording.add_module(n.target, self.submodules[n.target], args, kwargs, result)
        else:
            called_at = n.meta.get("called_at")
            recording.add_function(n.target, args, kwargs, result, line_site(*called_at) if called_at else None)
        return result

    def _same_shape(self, n: fx.Node, args):
        """The output of a node whose shape is known without running it (see
        ``known_output``), else None."""
        if n.op == "call_module" and len(args) == 1 and not n.kwargs and _is_meta(args[0]):
            return _module_output(self.submodules[n.target], args[0])
        if n.op == "call_function":
            return known_output(n.target, args, n.kwargs)
        return None


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
    dim = arg(args, kwargs, 1, "dim", 0)
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
        shape = tuple(arg(args, kwargs, 1, "normalized_shape"))
        return tuple(x.shape[-len(shape):]) == shape
    if function is F.batch_norm:
        mean = arg(args, kwargs, 1, "running_mean")
        return x.dim() >= 2 and (mean is None or tuple(mean.shape) == (x.shape[1],))
    if function is F.group_norm:
        return x.dim() >= 2 and x.shape[1] % arg(args, kwargs, 1, "num_groups") == 0
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
    if type(module).forward in TORCH_CONV_FORWARDS:
        return _conv_output(module, x)
    axes = ADAPTIVE_AVERAGE.get(type(module))
    if axes and x.dim() in (axes + 1, axes + 2):
        size = per_axis(module.output_size, axes)
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


@dataclass
class InputSpec:
    """What the model's input looks like, from the conv that first reads it, and the fx
    trace that told (reused by the capture), None where fx cannot trace the model."""

    channels: tuple[int, ...]  # channel counts to try, best guess first
    ndim: int
    traced: tuple[nn.Module, fx.Graph] | None


def input_spec(model: nn.Module) -> InputSpec:
    """The input's channels and spatial axes, from the first conv that reads the input.

    Not the first conv built: an ECA gate's Conv1d may be registered before a 2-D stem. A
    model that declares its channels (timm's ``in_chans``) is taken at its word: its first
    conv need not see the image (CSATv2's first conv reads 64 DCT coefficients). Without an
    fx trace, the first conv of the most common dimensionality is the guess; then RGB and
    grey images are tried.
    """
    try:
        traced = trace(model)
    except Exception:
        traced = None
    first = _first_conv_reading_input(*traced) if traced else None
    if first is None:
        convs = [m for m in model.modules() if isinstance(m, _ConvNd)]
        if not convs:
            return InputSpec((3, 1), 2, traced)
        common = Counter(len(m.kernel_size) for m in convs).most_common(1)[0][0]
        conv = next(m for m in convs if len(m.kernel_size) == common)
        first = (conv.out_channels if isinstance(conv, _ConvTransposeNd) else conv.in_channels, common)
    guess, ndim = first
    declared = getattr(model, "in_chans", None)
    if isinstance(declared, int):
        return InputSpec((declared,), ndim, traced)
    return InputSpec(tuple(dict.fromkeys((guess, 3, 1))), ndim, traced)


def _first_conv_reading_input(root: nn.Module, graph: fx.Graph) -> tuple[int, int] | None:
    """(channels, spatial axes) of the first conv, in execution order, that depends on the input."""
    reads_input: set[fx.Node] = set()
    for node in graph.nodes:
        if node.op == "placeholder":
            if not reads_input:
                reads_input.add(node)
            continue
        if not any(i in reads_input for i in node.all_input_nodes):
            continue
        reads_input.add(node)
        if node.op == "call_module":
            module = root.get_submodule(node.target)
            if isinstance(module, _ConvNd):
                transposed = isinstance(module, _ConvTransposeNd)
                return (module.out_channels if transposed else module.in_channels), len(module.kernel_size)
        elif node.op == "call_function" and node.target in (F.conv1d, F.conv2d, F.conv3d):
            weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
            if isinstance(weight, fx.Node) and weight.op == "get_attr":
                tensor = root.get_parameter(weight.target)
                groups = node.args[6] if len(node.args) > 6 else node.kwargs.get("groups", 1)
                return tensor.shape[1] * groups, tensor.dim() - 2
    return None


def capture_fx(model: nn.Module, input_res: Sequence[int], channels: int, traced=None) -> LayerGraph:
    """Trace ``model`` with fx (unless ``traced`` already is its trace) and run the graph once
    on a meta input of size ``input_res``, recording every node."""
    ndim = len(input_res)
    recorder = _Recorder(*(traced or trace(model)), ndim)
    with torch.no_grad(), recorder.recording.noting_progress():
        recorder.run(torch.empty(1, channels, *input_res, device=META))
    return recorder.recording.graph(recorder.output, "fx")
