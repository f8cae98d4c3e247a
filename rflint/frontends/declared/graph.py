"""Declared graphs: a network written down layer by layer, analysed without any framework.

The front end for architectures that exist only as a description (a NAS search space, a
paper's table, a JAX/Flax or ONNX model exported by a script): ``Graph`` takes one call per
layer, ``Graph.from_dict``/``to_dict`` read and write the versioned JSON form
(``docs/graph-format.md``), and ``analyze`` turns the layers into the core ``LayerGraph``
and returns the same ``Result`` as a torch model. Fields are computed when analysed, so a
search loop can change a stride (``graph["layer3.0.conv1"].stride = 1``) and re-analyse.
Imports no framework.
"""

from __future__ import annotations

import functools
import linecache
import re
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

from rflint.core import receptive_field as rf
from rflint.core.graph import GraphNode, LayerGraph, analyze_graph
from rflint.core.layers import Site
from rflint.core.resolution import as_resolution
from rflint.core.result import Result

FORMAT = "rflint-graph"
VERSION = 1

# op -> (graph kind, default type shown in reports, fields it takes besides the common ones)
OPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "input": ("input", "Input", ()),
    "conv": ("conv", "Conv", ("kernel", "stride", "dilation")),
    "conv_transpose": ("conv_transpose", "ConvTranspose", ("kernel", "stride", "dilation")),
    "pool": ("pool", "Pool", ("kernel", "stride", "dilation")),
    "upsample": ("resample", "Upsample", ("factor",)),
    "global": ("global", "GlobalPool", ()),
    "linear": ("linear", "Linear", ()),
    "pointwise": ("neutral", "Pointwise", ()),
    "add": ("neutral", "Add", ()),
    "concat": ("neutral", "Concat", ()),
    "multiply": ("neutral", "Multiply", ()),
}
MERGES = frozenset({"add", "concat", "multiply"})
REQUIRED = {"conv": ("kernel",), "conv_transpose": ("kernel",), "pool": ("kernel",), "upsample": ("factor",)}
COMMON_FIELDS = ("name", "op", "inputs", "type", "noqa")
GRAPH_FIELDS = ("format", "version", "name", "ndim", "input_res", "noqa", "layers", "$schema", "description", "metadata")
_CODE = re.compile(r"[A-Z]+[0-9]*")


class GraphSpecError(ValueError):
    """A declared graph that cannot be analysed; ``path`` names the field, as keys and
    indices from the top of the JSON document (``("layers", 3, "stride")``), and ``layer``
    the name of the layer it belongs to, when known."""

    def __init__(self, path: tuple, message: str, layer: str | None = None, *, unknown_key: bool = False):
        where = field_name(path) + (f" (layer '{layer}')" if isinstance(layer, str) and layer else "")
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.reason = message
        self.layer = layer
        self.unknown_key = unknown_key  # the key itself is wrong: point at it, not at its value


def field_name(path: Sequence) -> str:
    """``layers[3].stride`` for ``("layers", 3, "stride")``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(slots=True, eq=False)
class DeclaredLayer:
    """One declared op. Its fields but ``name`` may be changed after declaration (checked
    when the graph is analysed): ``kernel``, ``stride``, ``dilation`` and ``factor`` are an
    int for every axis or one value per axis; ``stride`` None means the kernel (pooling) or 1."""

    name: str
    op: str
    inputs: tuple[str, ...]
    kernel: Any = None
    stride: Any = None
    dilation: Any = 1
    factor: Any = None
    type: str | None = None
    noqa: Any = None  # True (every code) or codes this layer's diagnostics may not report
    site: Site | None = None  # where it was declared: the call in a script, the object in a file


class Graph:
    """A network declared by hand, one call per layer.

    >>> g = Graph("tiny")
    >>> x = g.input("image")
    >>> x = g.conv(x, 3, stride=2, name="stem")
    >>> g.analyze(32).i_min
    (3, 3)
    """

    def __init__(self, name: str = "graph", *, ndim: int = 2, input_res: int | Sequence[int] | None = None,
                 noqa: Any = None, site: Site | None = None):
        if not isinstance(ndim, int) or isinstance(ndim, bool) or not 1 <= ndim <= 3:
            raise GraphSpecError(("ndim",), f"must be 1, 2 or 3, got {ndim!r}")
        self.name = name
        self.ndim = ndim
        self.input_res = None if input_res is None else _resolution_field(input_res, ndim, ("input_res",))
        self.noqa = _noqa_field(noqa, ("noqa",))
        self.site = site if site is not None else _caller_site()
        self.layers: list[DeclaredLayer] = []
        self._index: dict[str, int] = {}

    # --- declaring layers -------------------------------------------------------------

    def input(self, name: str = "input", *, type: str | None = None) -> DeclaredLayer:
        """An input tensor; a graph may have several (two images, an image and a mask)."""
        return self._declare("input", (), name, type)

    def conv(self, x, kernel, stride=1, dilation=1, *, name: str | None = None, type: str | None = None,
             noqa: Any = None) -> DeclaredLayer:
        """A convolution (depthwise, grouped and 1x1 alike): ``kernel``, ``stride`` and
        ``dilation`` are an int for every axis or one value per axis."""
        return self._declare("conv", (x,), name, type, noqa, kernel=kernel, stride=stride, dilation=dilation)

    def conv_transpose(self, x, kernel, stride=1, dilation=1, *, name: str | None = None,
                       type: str | None = None, noqa: Any = None) -> DeclaredLayer:
        """A transposed convolution: divides the jump by ``stride`` and grows the field by
        ``(kernel - 1) * dilation`` output pixels."""
        return self._declare("conv_transpose", (x,), name, type, noqa, kernel=kernel, stride=stride, dilation=dilation)

    def pool(self, x, kernel, stride=None, dilation=1, *, name: str | None = None, type: str | None = None,
             noqa: Any = None) -> DeclaredLayer:
        """Max or average pooling; ``stride`` defaults to ``kernel`` as in torch and Keras."""
        return self._declare("pool", (x,), name, type, noqa, kernel=kernel, stride=stride, dilation=dilation)

    def upsample(self, x, factor, *, name: str | None = None, type: str | None = None,
                 noqa: Any = None) -> DeclaredLayer:
        """Nearest or bilinear upsampling by a whole ``factor`` (divides the jump by it)."""
        return self._declare("upsample", (x,), name, type, noqa, factor=factor)

    def global_pool(self, x, *, name: str | None = None, type: str | None = None) -> DeclaredLayer:
        """An op that sees the whole input: global pooling, a flatten into a dense layer,
        attention over every position. Everything after it has no bounded field."""
        return self._declare("global", (x,), name, type)

    def linear(self, x, *, name: str | None = None, type: str | None = None, noqa: Any = None) -> DeclaredLayer:
        """A dense layer: a layer where a bounded field reaches it (a channels-last MLP),
        nothing after a global op."""
        return self._declare("linear", (x,), name, type, noqa)

    def pointwise(self, x, *, name: str | None = None, type: str | None = None) -> DeclaredLayer:
        """An op that mixes no positions (activation, normalization, dropout): declaring it
        is optional, it changes no field."""
        return self._declare("pointwise", (x,), name, type)

    def add(self, *xs, name: str | None = None, type: str | None = None) -> DeclaredLayer:
        """Element-wise sum of branches (a residual connection)."""
        return self._declare("add", xs, name, type)

    def concat(self, *xs, name: str | None = None, type: str | None = None) -> DeclaredLayer:
        """Concatenation of branches along channels."""
        return self._declare("concat", xs, name, type)

    def multiply(self, *xs, name: str | None = None, type: str | None = None) -> DeclaredLayer:
        """Element-wise product (a squeeze-and-excitation gate times its input)."""
        return self._declare("multiply", xs, name, type)

    def __getitem__(self, name: str) -> DeclaredLayer:
        return self.layers[self._index[name]]

    def __len__(self) -> int:
        return len(self.layers)

    def _declare(self, op: str, inputs: Sequence, name: str | None, type: str | None, noqa: Any = None,
                 **params) -> DeclaredLayer:
        names = tuple(x.name if isinstance(x, DeclaredLayer) else x for x in inputs)
        layer = DeclaredLayer(name if name is not None else f"{op}_{len(self.layers)}", op, names,
                              type=type, site=_caller_site(2), **params)
        path = ("layers", len(self.layers))
        _check_layer(layer, self.ndim, path)
        layer.noqa = _noqa_field(noqa, (*path, "noqa"))
        self._append(layer, path)
        return layer

    def _append(self, layer: DeclaredLayer, path: tuple) -> None:
        if layer.name in self._index:
            raise GraphSpecError((*path, "name"), f"'{layer.name}' is declared twice")
        for position, source in enumerate(layer.inputs):
            if source not in self._index:
                raise GraphSpecError((*path, "inputs", position), f"'{source}' is not a layer declared before it",
                                     layer.name)
        self._index[layer.name] = len(self.layers)
        self.layers.append(layer)

    # --- analysing ----------------------------------------------------------------------

    def analyze(self, input_res: int | Sequence[int] | None = None) -> Result:
        """Receptive fields of every layer at ``input_res`` (default: the graph's own)."""
        if input_res is None and self.input_res is None:
            raise ValueError(f"graph '{self.name}' declares no input_res: pass one to analyze()")
        res = as_resolution(self.input_res if input_res is None else input_res, self.ndim)
        return analyze_graph(self.layer_graph(), res, name=self.name, build="declared", source=self.site)

    def layer_graph(self) -> LayerGraph:
        """The core graph of the layers as they are now (their fields may have changed)."""
        index = self._index
        nodes = []
        for position, layer in enumerate(self.layers):
            try:
                inputs = tuple(index[source] for source in layer.inputs)
            except KeyError as missing:
                raise GraphSpecError(("layers", position, "inputs"), f"'{missing.args[0]}' is not a layer",
                                     layer.name) from None
            if inputs and max(inputs) >= position:
                raise GraphSpecError(("layers", position, "inputs"),
                                     f"'{self.layers[max(inputs)].name}' is declared after it", layer.name)
            kind, op = _layer_core_op(layer, self.ndim, ("layers", position))
            nodes.append(GraphNode(layer.name, layer.type or OPS[layer.op][1], kind, inputs, op,
                                   called_at=layer.site))
        return LayerGraph(nodes, self.ndim, method="declared")

    # --- the JSON form ----------------------------------------------------------------

    def to_dict(self) -> dict:
        """The versioned JSON form (``docs/graph-format.md``); ``from_dict`` reads it back."""
        document: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name, "ndim": self.ndim}
        if self.input_res is not None:
            document["input_res"] = _compact(self.input_res)
        if self.noqa is not None:
            document["noqa"] = _noqa_json(self.noqa)
        document["layers"] = [_layer_dict(layer) for layer in self.layers]
        return document

    @classmethod
    def from_dict(cls, document: Mapping, *, sites: Mapping[tuple, Site] = {}) -> "Graph":
        """A graph from its JSON form; a ``GraphSpecError`` names the first wrong field.

        ``sites`` gives the position of a field path in the file it came from (the graph
        file front end passes them), so diagnostics point into the file.
        """
        if not isinstance(document, Mapping):
            raise GraphSpecError((), f"a graph file holds one JSON object, not {_json_type(document)}")
        _check_keys(document, GRAPH_FIELDS, ())
        _require(document, ("format", "version", "layers"), ())
        if document.get("format") != FORMAT:
            raise GraphSpecError(("format",), f"must be \"{FORMAT}\", got {_shown(document.get('format'))}")
        if document.get("version") != VERSION or isinstance(document.get("version"), bool):
            raise GraphSpecError(("version",), f"this rflint reads version {VERSION}, got {_shown(document.get('version'))}")
        name = document.get("name", "graph")
        if not isinstance(name, str) or not name:
            raise GraphSpecError(("name",), f"must be a non-empty string, got {_shown(name)}")
        site = sites.get(("name",)) or sites.get(()) or _caller_site()
        graph = cls(name, ndim=document.get("ndim", 2), input_res=document.get("input_res"),
                    noqa=document.get("noqa"), site=site)
        layers = document.get("layers")
        if not isinstance(layers, list) or not layers:
            raise GraphSpecError(("layers",), f"must be a non-empty list of layers, got {_shown(layers)}")
        for position, item in enumerate(layers):
            path = ("layers", position)
            graph._append(_layer_from_dict(item, graph, path, sites.get((*path, "name")) or sites.get(path)), path)
        if not any(layer.op == "input" for layer in graph.layers):
            raise GraphSpecError(("layers",), 'no layer has "op": "input"')
        return graph


def _layer_from_dict(item: Any, graph: Graph, path: tuple, site: Site | None) -> DeclaredLayer:
    if not isinstance(item, Mapping):
        raise GraphSpecError(path, f"a layer is a JSON object, not {_json_type(item)}")
    _require(item, ("name", "op"), path)
    op = item.get("op")
    if op not in OPS:
        raise GraphSpecError((*path, "op"), f"must be one of {', '.join(OPS)}; got {_shown(op)}")
    _check_keys(item, COMMON_FIELDS + OPS[op][2], path)
    _require(item, REQUIRED.get(op, ()), path)
    if "inputs" in item:
        inputs = item["inputs"]
        if not isinstance(inputs, list) or not all(isinstance(source, str) for source in inputs):
            raise GraphSpecError((*path, "inputs"), f"must be a list of layer names, got {_shown(inputs)}")
    else:  # a chain reads the layer before it
        inputs = [graph.layers[-1].name] if graph.layers and op != "input" else []
    layer = DeclaredLayer(item.get("name"), op, tuple(inputs), item.get("kernel"), item.get("stride"),
                          item.get("dilation", 1), item.get("factor"), item.get("type"), site=site)
    _check_layer(layer, graph.ndim, path)
    layer.noqa = _noqa_field(item.get("noqa"), (*path, "noqa"))
    return layer


def _check_layer(layer: DeclaredLayer, ndim: int, path: tuple) -> None:
    """Everything about one layer that does not need the rest of the graph."""
    if not isinstance(layer.name, str) or not layer.name:
        raise GraphSpecError((*path, "name"), f"must be a non-empty string, got {_shown(layer.name)}")
    if layer.type is not None and not isinstance(layer.type, str):
        raise GraphSpecError((*path, "type"), f"must be a string, got {_shown(layer.type)}", layer.name)
    count = len(layer.inputs)
    if layer.op == "input" and count:
        raise GraphSpecError((*path, "inputs"), "an input layer reads no other layer", layer.name)
    if layer.op in MERGES and count < 2:
        raise GraphSpecError((*path, "inputs"), f"'{layer.op}' merges two or more layers, got {count}", layer.name)
    if layer.op not in MERGES and layer.op != "input" and count != 1:
        raise GraphSpecError((*path, "inputs"), f"'{layer.op}' reads exactly one layer, got {count}", layer.name)
    _layer_core_op(layer, ndim, path)


def _layer_core_op(layer: DeclaredLayer, ndim: int, path: tuple) -> tuple[str, Any]:
    try:
        return _core_op(layer.op, layer.kernel, layer.stride, layer.dilation, layer.factor, ndim)
    except GraphSpecError as error:
        raise GraphSpecError((*path, *error.path), error.reason, layer.name) from None


@functools.lru_cache(maxsize=4096)
def _cached_core_op(op: str, kernel, stride, dilation, factor, ndim: int) -> tuple[str, Any]:
    kind = OPS[op][0]
    if kind in ("conv", "conv_transpose", "pool"):
        kernel = _per_axis(kernel, ndim, "kernel")
        stride = kernel if stride is None and op == "pool" else _per_axis(1 if stride is None else stride, ndim, "stride")
        window = rf.Window(kernel, stride, _per_axis(dilation, ndim, "dilation"), transposed=op == "conv_transpose")
        return kind, window
    if op == "upsample":
        factors = _per_axis(factor, ndim, "factor")
        return kind, rf.Window((1,) * ndim, tuple(Fraction(1, f) for f in factors), (1,) * ndim)
    if op == "global":
        return kind, rf.GLOBAL
    if op == "linear":
        return kind, rf.Window((1,) * ndim, (1,) * ndim, (1,) * ndim)
    return kind, rf.NEUTRAL


def _core_op(op, kernel, stride, dilation, factor, ndim: int) -> tuple[str, Any]:
    """(graph kind, receptive-field op) of a layer; cached, since a search loop analyses
    the same few kernels and strides thousands of times."""
    try:
        return _cached_core_op(op, _hashable(kernel), _hashable(stride), _hashable(dilation), _hashable(factor), ndim)
    except TypeError:  # an unhashable value (a dict): let the checks name it
        return _cached_core_op.__wrapped__(op, kernel, stride, dilation, factor, ndim)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _per_axis(value, ndim: int, field: str) -> tuple[int, ...]:
    """A positive int for every axis, or a list of ``ndim`` positive ints."""
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,) * ndim
    if len(values) != ndim or not all(type(v) is int and v > 0 for v in values):
        raise GraphSpecError((field,), f"must be a positive integer or a list of {ndim}, got {_shown(value)}")
    return values


def _resolution_field(value, ndim: int, path: tuple) -> tuple[int, ...]:
    try:
        return _per_axis(value, ndim, path[-1])
    except GraphSpecError as error:
        raise GraphSpecError(path, error.reason) from None


def _noqa_field(value, path: tuple):
    """True for every code, a frozenset of codes (or prefixes), or None."""
    if value is None or value is False:
        return None
    if value is True:
        return True
    codes = [value] if isinstance(value, str) else value
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) and _CODE.fullmatch(c) for c in codes):
        raise GraphSpecError(path, f"must be true, a rule code or a list of codes (\"RF001\"), got {_shown(value)}")
    return frozenset(codes)


def _require(item: Mapping, keys: Iterable[str], path: tuple) -> None:
    for key in keys:
        if key not in item:
            raise GraphSpecError((*path, key), "missing", item.get("name") if path else None)


def _check_keys(item: Mapping, allowed: Iterable[str], path: tuple) -> None:
    for key in item:
        if key not in allowed:
            raise GraphSpecError((*path, key), f"unknown field (expected one of {', '.join(allowed)})",
                                 item.get("name") if path else None, unknown_key=True)


def _layer_dict(layer: DeclaredLayer) -> dict:
    entry: dict[str, Any] = {"name": layer.name, "op": layer.op}
    if layer.inputs:
        entry["inputs"] = list(layer.inputs)
    for field in OPS[layer.op][2]:
        value = getattr(layer, field)
        if value is not None and not (field == "dilation" and value == 1):
            entry[field] = _compact(value)
    if layer.type is not None:
        entry["type"] = layer.type
    if layer.noqa is not None:
        entry["noqa"] = _noqa_json(layer.noqa)
    return entry


def _compact(value):
    """One number for every axis when they agree, else a list."""
    if isinstance(value, (list, tuple)):
        return value[0] if len(set(value)) == 1 else list(value)
    return value


def _noqa_json(noqa):
    return True if noqa is True else sorted(noqa)


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _shown(value) -> str:
    """A value as JSON writes it (lists, null), whether it came from a file or from Python."""
    if value is None:
        return "null"
    text = f'"{value}"' if isinstance(value, str) else repr(list(value) if isinstance(value, tuple) else value)
    return text if len(text) <= 40 else text[:37] + "..."


@functools.lru_cache(maxsize=1024)
def _line_site(file: str, line: int) -> Site:
    """The declaring line, from its first non-blank character (as torch diagnostics point)."""
    text = linecache.getline(file, line)
    column = len(text) - len(text.lstrip()) + 1
    return Site(file, line, column, line, max(len(text.rstrip()) + 1, column))


def _caller_site(depth: int = 1) -> Site | None:
    """Where the user's code declared a layer or a graph: diagnostics point at that line."""
    frame = sys._getframe(depth + 1)
    return _line_site(frame.f_code.co_filename, frame.f_lineno)
