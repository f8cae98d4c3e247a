"""The layer graph every front end produces, and the Result computed from it.

A front end (a torch model captured by fx, a Keras functional graph, a declared graph)
turns a network into ``GraphNode``s in topological order: each names the nodes it reads and
the receptive-field op it applies per input axis (``receptive_field.Window``, ``GLOBAL`` or
``NEUTRAL``). ``analyze_graph`` is the one place where fields become a ``Result``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Mapping

from rflint.core import receptive_field as rf
from rflint.core.layers import Layer, Site
from rflint.core.result import Result

# Kinds whose nodes are layers (reported, counted in I_min); "attention" is mixing along
# tokens that carry a bounded window of positions (Swin's windows, VOLO's outlook).
LAYER_KINDS = frozenset({"conv", "conv_transpose", "pool", "resample", "linear", "attention"})


@dataclass
class GraphNode:
    """One op of the network.

    ``kind`` is one of input, constant, conv, conv_transpose, pool, resample, linear,
    attention, global, neutral, unknown. ``module_path`` keys the construction sites of a
    module; ``called_at`` locates a functional call; ``stride_literals`` and
    ``kernel_literals`` say, per axis, where the value was written (for fixes).
    ``edge_ops`` (or None) gives one op per input, applied to that input's fields before
    the inputs merge and ``op`` applies.
    """

    name: str
    op_type: str
    kind: str
    inputs: tuple[int, ...]
    op: Any = rf.NEUTRAL
    edge_ops: tuple | None = None  # per input, applied before ``op`` (attention mixes keys, not queries)
    module_path: str | None = None
    called_at: Site | None = None
    stride_literals: tuple[Site | None, ...] = ()
    kernel_literals: tuple[Site | None, ...] = ()

    @property
    def is_input(self) -> bool:
        """What ``receptive_field.propagate`` reads, so it can take these nodes as they are."""
        return self.kind == "input"


@dataclass
class LayerGraph:
    """A captured or declared network: its nodes, its number of spatial axes, how it was
    read; a capture also says what the model returned and which ops acted globally, which
    a fix must keep (``fix/interface.py``)."""

    nodes: list[GraphNode]
    ndim: int
    outputs: tuple = ()  # the shape of each output leaf, None for one that is no tensor (captures only)
    method: str = "fx"  # fx, eager, declared, keras
    global_ops: tuple[tuple[str, int], ...] = ()  # op type -> calls that reduced a map to one position (captures only)
    input_shape: tuple[int, ...] = ()  # the input the capture ran on (captures only)
    flops: int = 0  # of the convs, matrix products and attentions run (torch captures only)


def analyze_graph(
    graph: LayerGraph,
    input_res: tuple[int, ...],
    *,
    name: str,
    sites: Mapping[str, tuple[Site, ...]] = {},
    **result_fields,
) -> Result:
    """Receptive fields of every node, then the layers, I_min and I_max of the Result.

    A Linear is a layer only where a bounded field reaches it (channels-last MLPs); one
    after a flatten sees the whole image like global pooling. Unknown ops are counted
    only where a bounded field flows through them: elsewhere they cannot change a number.
    """
    nodes = graph.nodes
    fields = rf.propagate(nodes, graph.ndim)
    layers: list[Layer] = []
    layer_index: list[int] = []
    for i, (node, f) in enumerate(zip(nodes, fields)):
        if node.kind not in LAYER_KINDS:
            continue
        layer_index.append(i)
        if node.kind == "linear" and not f.bounded:
            continue
        layers.append(_layer(node, f, sites))
    i_min, i_max = rf.input_limits(fields, layer_index, graph.ndim)
    unknown = [_layer(n, f, sites) for n, f in zip(nodes, fields) if n.kind == "unknown" and f.bounded]
    return Result(
        name=name,
        input_res=input_res,
        layers=layers,
        i_min=i_min,
        i_max=i_max,
        unknown_ops=dict(Counter(u.op_type for u in unknown)),
        unknown=unknown,
        unbounded_by=_unbounded_by(nodes, fields, layers, sites),
        capture=graph.method,
        graph=graph,
        **result_fields,
    )


def with_literals(graph: LayerGraph, values: Mapping[Site, int]) -> LayerGraph:
    """The graph as if the stride and kernel literals at ``values`` were written with the new
    values: every window whose stride or kernel one of them set, on the axes it set.

    Arithmetic on the graph as captured, so a prediction: a new value can also change which
    ops the model runs (a stride of 1 switching on a residual shortcut) or break a shape,
    which only a rebuild shows.
    """

    def rewritten(node: GraphNode) -> GraphNode:
        op = node.op
        if not isinstance(op, rf.Window):
            return node
        stride = _rewritten_axes(op.stride, node.stride_literals, values)
        kernel = _rewritten_axes(op.kernel, node.kernel_literals, values)
        if stride == op.stride and kernel == op.kernel:
            return node
        return replace(node, op=replace(op, stride=stride, kernel=kernel))

    return replace(graph, nodes=[rewritten(node) for node in graph.nodes])


def _rewritten_axes(current: tuple, sites: tuple[Site | None, ...], values: Mapping[Site, int]) -> tuple:
    return tuple(values.get(sites[axis], value) if axis < len(sites) and sites[axis] is not None else value
                 for axis, value in enumerate(current))


SPATIAL_KINDS = frozenset({"conv", "conv_transpose", "pool"})


def _unbounded_by(nodes: list[GraphNode], fields: list[rf.Field], layers: list[Layer], sites) -> Layer | None:
    """For a model with convolutions or pools none of which is bounded: the first op that
    took a bounded field in and gave none out (a reshape read as flattening the image, an
    op seeing a whole axis before the first conv). None when some layer is bounded, or the
    model has no spatial layer at all (not a CNN)."""
    if any(layer.bounded for layer in layers) or not any(n.kind in SPATIAL_KINDS for n in nodes):
        return None
    for node, f in zip(nodes, fields):
        if not f.bounded and any(fields[i].bounded for i in node.inputs):
            return _layer(node, f, sites)
    return next((_layer(n, f, sites) for n, f in zip(nodes, fields) if n.kind in SPATIAL_KINDS), None)


def _layer(node: GraphNode, f: rf.Field, sites: Mapping[str, tuple[Site, ...]]) -> Layer:
    op = node.op if isinstance(node.op, rf.Window) else None
    return Layer(
        name=node.name,
        op_type=node.op_type,
        kind=node.kind,
        kernel=op.kernel if op else (),
        stride=op.stride if op else (),
        dilation=op.dilation if op else (),
        r_min=rf.pixels(f.r_min) if f.bounded else None,
        r_max=rf.pixels(f.r_max) if f.bounded else None,
        r_in_min=rf.pixels(f.r_in_min) if f.r_in_min is not None else None,
        jump=f.jump_min,
        called_at=node.called_at,
        constructed_at=sites.get(node.module_path, ()) if node.module_path else (),
        stride_literals=node.stride_literals,
        kernel_literals=node.kernel_literals,
    )
