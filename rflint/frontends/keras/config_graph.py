"""A Keras model config (Keras 2 or Keras 3 format) as the core's LayerGraph; no torch, no keras.

Saved models (``.keras`` archives, ``model.to_json()`` files) and live models (their
``get_config()``) both come here, so the two give the same graph. Every call of a layer
becomes a node (a shared layer is applied once per call); nested models are inlined per
call, their layers named ``outer/inner``. Shapes are inferred at the requested input
resolution with Keras's own formulas, and every tensor carries its layout (which input
axes each dimension holds, ``core.layout``), so Reshape, Permute, Flatten, a Dense on a
4-D tensor (channels only), attention and ``channels_first`` are followed like on the
torch side. A layer rflint does not know (Lambda, custom layers) is an ``unknown`` node,
counted in the Result, never silently neutral.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from rflint.core import receptive_field as rf
from rflint.core.graph import GraphNode, LayerGraph
from rflint.core.layout import FEATURES, Layout, LayoutError, consume_offsets, mixed, mixing_op, pieces, resample, slide
from rflint.core.layers import Site
from rflint.core.resolution import as_resolution


class KerasConfigError(ValueError):
    """The config cannot be read, or the model cannot run at the input resolution."""


Ref = tuple[str, int, int]  # (layer name, node index, tensor index): one tensor of the graph


@dataclass(frozen=True)
class Tensor:
    node: int  # index of the graph node that made it
    layout: Layout


@dataclass
class LayerLiterals:
    """Where a live layer's stride and kernel were written, per model axis (for fixes)."""

    strides: tuple[Site | None, ...] = ()
    kernels: tuple[Site | None, ...] = ()


@dataclass(frozen=True)
class LayerCall:
    """One call of one layer: its node name, its layer path, class name and config."""

    name: str
    path: str
    kind: str
    config: dict
    build_config: dict | None = None


@dataclass
class KerasGraph:
    """The core graph of a Keras model, and its cost at the input resolution."""

    graph: LayerGraph
    input_res: tuple[int, ...]
    flops: int  # 2 per multiply-accumulate of convs and Dense (as torch's FlopCounterMode)
    layer_paths: list[str] = field(default_factory=list)  # every layer analysed, nested ones as outer/inner


# Layers that mix no positions at inference (norm statistics are not spatial context, as on
# the torch side; augmentation layers are identities at inference).
NEUTRAL_LAYERS = frozenset({
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization", "Normalization",
    "Rescaling", "Identity", "ActivityRegularization", "Masking", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomContrast", "RandomTranslation", "RandomBrightness", "SyncBatchNormalization", "RMSNormalization",
    # keras.applications' own helpers: ConvNeXt's per-channel scale
    "LayerScale",
})
MERGES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
                    # InceptionResNetV2's residual: inputs[0] + inputs[1] * scale
                    "CustomScaleLayer"})
MODELS = frozenset({"Functional", "Model", "Sequential"})
INPUT = "InputLayer"


def _tuple(value, rank: int) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value) if len(value) == rank else tuple(value) * rank if len(value) == 1 else tuple(value)
    return (value,) * rank


def _class(layer: dict) -> str:
    return layer.get("class_name", "")


def _config(layer: dict) -> dict:
    config = layer.get("config")
    return config if isinstance(config, dict) else {}


def layer_name(layer: dict) -> str:
    return layer.get("name") or _config(layer).get("name") or _class(layer)


def model_layers(model: dict) -> list[dict]:
    """The layers of a Functional or Sequential config (Keras 2.0-2.2 Sequential: a bare list)."""
    config = model.get("config")
    layers = config if isinstance(config, list) else _config(model).get("layers")
    if not isinstance(layers, list):
        raise KerasConfigError(f"model '{layer_name(model)}' has no 'layers' list in its config")
    return layers


def is_model(layer: dict) -> bool:
    return _class(layer) in MODELS or isinstance(layer.get("config"), list) or "layers" in _config(layer)


def is_sequential(model: dict) -> bool:
    return _class(model) == "Sequential" or isinstance(model.get("config"), list)


def batch_shape(layer: dict) -> tuple | None:
    config = _config(layer)
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if shape is None and config.get("shape") is not None:
        shape = [None, *config["shape"]]
    return tuple(shape) if shape is not None else None


def all_layers(model: dict) -> Iterable[dict]:
    for layer in model_layers(model):
        yield layer
        if is_model(layer):
            yield from all_layers(layer)


def input_spec(model: dict) -> tuple[int, bool]:
    """(spatial axes, channels_last) of the model's image input: from its input layer's
    rank, else from its first spatial layer; the data format of its first spatial layer."""
    data_format = next((_config(l)["data_format"] for l in all_layers(model)
                        if _config(l).get("data_format") in ("channels_first", "channels_last")), "channels_last")
    shape = next((batch_shape(l) for l in all_layers(model) if batch_shape(l)), None)
    if shape is not None and len(shape) >= 3:
        return len(shape) - 2, data_format == "channels_last"
    kernel = next((_config(l).get("kernel_size") or _config(l).get("pool_size") for l in all_layers(model)
                   if _config(l).get("kernel_size") or _config(l).get("pool_size")), None)
    if kernel is None:
        raise KerasConfigError("the model has no image input and no convolution or pooling layer")
    return len(_tuple(kernel, 1)) if isinstance(kernel, (list, tuple)) else 2, data_format == "channels_last"


def _refs(value) -> list[Ref]:
    """The tensors a call argument names, in order (Keras 3 ``__keras_tensor__`` dicts,
    Keras 2 ``[name, node, tensor]`` lists), walking nested lists and dicts."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            name, node, tensor = value["config"]["keras_history"]
            return [(name, int(node), int(tensor))]
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, (list, tuple)):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int) and isinstance(value[2], int):
            return [(value[0], value[1], value[2])]
        return [r for v in value for r in _refs(v)]
    return []


def _call_arguments(node) -> tuple[list[Ref], dict[str, list[Ref]]]:
    """(positional tensors, keyword tensors) of one inbound node, in either format."""
    if isinstance(node, dict):  # Keras 3
        return _refs(node.get("args", [])), {k: _refs(v) for k, v in (node.get("kwargs") or {}).items() if _refs(v)}
    positional, keywords = [], {}
    for entry in node:  # Keras 2: [[name, node, tensor, kwargs], ...]
        positional.append((entry[0], int(entry[1]), int(entry[2])))
        if len(entry) > 3 and isinstance(entry[3], dict):
            keywords.update({k: _refs(v) for k, v in entry[3].items() if _refs(v)})
    return positional, keywords


class GraphBuilder:
    """Walks a model config and adds one node per layer call."""

    def __init__(self, ndim: int, res: tuple[int, ...], channels_last: bool,
                 literals: Callable[[str], LayerLiterals | None] | None = None):
        self.ndim = ndim
        self.res = res
        self.channels_last = channels_last
        self.literals = literals or (lambda path: None)
        self.nodes: list[GraphNode] = []
        self.flops = 0
        self.paths: list[str] = []

    # -- nodes --------------------------------------------------------------------------
    def add(self, name: str, op_type: str, kind: str, inputs: Sequence[Tensor], op=rf.NEUTRAL,
            path: str | None = None, literals: LayerLiterals | None = None) -> int:
        literals = literals or LayerLiterals()
        self.nodes.append(GraphNode(name, op_type, kind, tuple(dict.fromkeys(t.node for t in inputs)), op,
                                    module_path=path, stride_literals=literals.strides,
                                    kernel_literals=literals.kernels))
        return len(self.nodes) - 1

    # -- models -------------------------------------------------------------------------
    def top(self, model: dict) -> list[Tensor]:
        return self.inline(model, "", None)

    def inline(self, model: dict, prefix: str, inputs: list[Tensor] | None) -> list[Tensor]:
        """Add a model's layers, called on ``inputs`` (None for the top model, whose input
        layers become the graph's inputs); returns its outputs."""
        if is_sequential(model):
            return self._sequential(model, prefix, inputs)
        return self._functional(model, prefix, inputs)

    def _new_input(self, layer: dict, prefix: str) -> Tensor:
        shape = batch_shape(layer) or (None,) * (self.ndim + 2)
        name = prefix + layer_name(layer)
        if len(shape) != self.ndim + 2:  # a non-image input (a vector of metadata)
            layout = Layout.plain(tuple(1 if n is None else int(n) for n in shape))
            return Tensor(self.add(name, INPUT, "constant", ()), layout)
        channels = shape[-1] if self.channels_last else shape[1]
        channels = 3 if channels is None else int(channels)
        full = (1, *self.res, channels) if self.channels_last else (1, channels, *self.res)
        return Tensor(self.add(name, INPUT, "input", ()), Layout.image(full, self.ndim, self.channels_last))

    def _sequential(self, model: dict, prefix: str, inputs: list[Tensor] | None) -> list[Tensor]:
        layers = model_layers(model)
        current = inputs
        for layer in layers:
            if _class(layer) == INPUT:
                if current is None:
                    current = [self._new_input(layer, prefix)]
                continue
            if current is None:  # Keras 2: the first layer carries batch_input_shape
                current = [self._new_input(layer, prefix)]
            current = self.call(layer, prefix, 0, current, {}, calls=1)
        if current is None:
            raise KerasConfigError(f"Sequential model '{layer_name(model)}' has no layers")
        return current

    def _functional(self, model: dict, prefix: str, inputs: list[Tensor] | None) -> list[Tensor]:
        config = _config(model)
        layers = model_layers(model)
        produced: dict[tuple[str, int], list[Tensor]] = {}
        input_refs = _refs(config.get("input_layers", []))
        by_name = {layer_name(l): l for l in layers}
        if inputs is not None:
            if len(inputs) != len(input_refs):
                raise KerasConfigError(f"model '{layer_name(model)}' takes {len(input_refs)} inputs, is called with {len(inputs)}")
            for (name, _, _), tensor in zip(input_refs, inputs):
                produced[(name, 0)] = [tensor]
        else:
            for name, _, _ in input_refs:
                if name not in by_name:
                    raise KerasConfigError(f"input layer '{name}' is not among the model's layers")
                produced[(name, 0)] = [self._new_input(by_name[name], prefix)]
        pending = [(layer, k) for layer in layers if _class(layer) != INPUT
                   for k in range(len(layer.get("inbound_nodes") or []))]
        while pending:
            waiting = []
            for layer, k in pending:
                args, kwargs = _call_arguments(layer["inbound_nodes"][k])
                needed = args + [r for refs in kwargs.values() for r in refs]
                if not all((r[0], r[1]) in produced for r in needed):
                    waiting.append((layer, k))
                    continue
                tensor = lambda r: self._pick(produced, r)  # noqa: E731
                produced[(layer_name(layer), k)] = self.call(
                    layer, prefix, k, [tensor(r) for r in args], {key: [tensor(r) for r in refs] for key, refs in kwargs.items()},
                    calls=len(layer["inbound_nodes"]))
            if len(waiting) == len(pending):
                missing = sorted({r[0] for layer, k in waiting for r in _call_arguments(layer["inbound_nodes"][k])[0]
                                  if (r[0], r[1]) not in produced and r[0] not in by_name})
                what = f"unknown layer '{missing[0]}'" if missing else "a cycle"
                raise KerasConfigError(f"model '{layer_name(model)}': a layer reads {what}")
            pending = waiting
        return [self._pick(produced, r) for r in _refs(config.get("output_layers", []))]

    @staticmethod
    def _pick(produced, ref: Ref) -> Tensor:
        outputs = produced.get((ref[0], ref[1]))
        if outputs is None or ref[2] >= len(outputs):
            raise KerasConfigError(f"no output {ref[2]} of call {ref[1]} of layer '{ref[0]}'")
        return outputs[ref[2]]

    # -- layers -------------------------------------------------------------------------
    def call(self, layer: dict, prefix: str, k: int, args: list[Tensor], kwargs: dict[str, list[Tensor]],
             calls: int) -> list[Tensor]:
        """One call of one layer; a nested model is inlined (each call anew)."""
        base = prefix + layer_name(layer)
        name = f"{base} (call {k + 1})" if calls > 1 else base
        if is_model(layer):
            return self.inline(layer, (name if calls > 1 else base) + "/", args)
        if not args:
            raise KerasConfigError(f"layer '{base}' is called on no tensor")
        self.paths.append(base)
        try:
            return self._apply(layer, name, base, args, kwargs)
        except LayoutError as error:  # a regrouping the layout algebra cannot follow
            raise KerasConfigError(f"layer '{base}': {error}") from error

    def _apply(self, layer: dict, name: str, path: str, args: list[Tensor], kwargs) -> list[Tensor]:
        kind = _class(layer)
        config = _config(layer)
        x = args[0]
        if kind in NEUTRAL_LAYERS:
            return [Tensor(self.add(name, kind, "neutral", args, path=path), x.layout)]
        if kind in MERGES:
            return [self._merge(name, kind, path, args)]
        handler = HANDLERS.get(kind)
        if handler is None:
            # Lambda and layers rflint does not know: counted as unknown, shape assumed kept.
            return [Tensor(self.add(name, kind, "unknown", args + [t for ts in kwargs.values() for t in ts], path=path),
                           x.layout)]
        return [handler(self, LayerCall(name, path, kind, config, layer.get("build_config")), args, kwargs)]

    def spatial_dims(self, layout: Layout, rank: int, config: dict, what: str) -> list[int]:
        """The dimensions a ``rank``-D layer slides over, by its data format."""
        if layout.rank != rank + 2:
            raise KerasConfigError(f"{what} expects a {rank + 2}-D input, gets {layout.rank}-D {layout.shape}")
        first = config.get("data_format") == "channels_first"
        return list(range(2, rank + 2)) if first else list(range(1, rank + 1))

    def channel_dim(self, layout: Layout, config: dict) -> int:
        return 1 if config.get("data_format") == "channels_first" else layout.rank - 1

    def axis_sites(self, layout: Layout, dims: Sequence[int], sites: Sequence[Site | None]) -> tuple[Site | None, ...]:
        """Per-layer-axis literal sites placed on the model axes those dimensions carry."""
        placed: list[Site | None] = [None] * self.ndim
        for dim, site in zip(dims, sites):
            axes = [p.axis for p in layout.dims[dim] if p.spatial]
            if axes:
                placed[axes[0]] = site
        return tuple(placed)

    def _merge(self, name: str, kind: str, path: str, args: list[Tensor]) -> Tensor:
        widest = max(args, key=lambda t: (t.layout.rank, math.prod(t.layout.shape)))
        for t in args:
            if not _broadcasts_to(t.layout.shape, widest.layout.shape):
                raise KerasConfigError(f"layer '{path}' ({kind}) gets shapes {[a.layout.shape[1:] for a in args]} "
                                       f"at input resolution {'x'.join(map(str, self.res))}")
        return Tensor(self.add(name, kind, "neutral", args, path=path), widest.layout)

    def literal_sites(self, path: str, layout: Layout, dims: Sequence[int]) -> LayerLiterals | None:
        found = self.literals(path)
        if found is None:
            return None
        return LayerLiterals(self.axis_sites(layout, dims, found.strides), self.axis_sites(layout, dims, found.kernels))


def _broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    return len(shape) <= len(target) and all(n in (1, t) for n, t in zip(shape[::-1], target[::-1]))


def _window_size(n: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Keras's output length of a conv or pool (``compute_conv_output_shape``)."""
    effective = dilation * (kernel - 1) + 1
    size = (n - effective) // stride + 1 if padding == "valid" else (n - 1) // stride + 1
    return size


def _transposed_size(n: int, kernel: int, stride: int, dilation: int, padding: str, output_padding) -> int:
    """Keras's ``_get_output_shape_given_tf_padding``."""
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(effective, stride) - effective if output_padding is None else output_padding
        return (n - 1) * stride + effective + extra
    return n * stride if output_padding is None else (n - 1) * stride + effective % 2 + output_padding


def _rank_of(kind: str) -> int:
    for rank in (1, 2, 3):
        if f"{rank}D" in kind:
            return rank
    return 2


def _sliding(builder: GraphBuilder, name: str, path: str, config: dict, args: list[Tensor], *,
             kind: str, op_type: str, kernel, stride, dilation, padding: str, out_channels: int | None,
             transposed: bool = False, output_padding=None, macs_per_output: int = 0) -> Tensor:
    """A conv or pool along the layer's spatial dimensions (mapped to model axes by the layout)."""
    x = args[0]
    rank = len(kernel)
    dims = builder.spatial_dims(x.layout, rank, config, f"{op_type} '{path}'")
    channel = builder.channel_dim(x.layout, config)
    layout = x.layout
    inputs = [x]
    if any(p.spatial for p in layout.dims[channel]):
        # Channels that hold block offsets (a space-to-depth Reshape before this conv): the
        # patchify completes here, as a window of the block size with its stride.
        op, layout = consume_offsets(layout, builder.ndim)
        if op is not rf.NEUTRAL:
            inputs = [Tensor(builder.add(f"{name}/space-to-depth", "SpaceToDepth", "pool", inputs, op), layout)]
    sizes_in = [layout.shape[d] for d in dims]
    if transposed:
        out = [_transposed_size(n, k, s, d, padding, None if output_padding is None else output_padding[i])
               for i, (n, k, s, d) in enumerate(zip(sizes_in, kernel, stride, dilation))]
    else:
        out = [_window_size(n, k, s, d, padding) for n, k, s, d in zip(sizes_in, kernel, stride, dilation)]
    if min(out) < 1:
        raise KerasConfigError(f"{op_type} '{path}' gets a {'x'.join(map(str, sizes_in))} map, smaller than its "
                               f"{'x'.join(map(str, kernel))} window, at input resolution {'x'.join(map(str, builder.res))}")
    # One output position whose unpadded window is the whole map (a fixed 7x7 pool on a 7x7
    # map) sees the whole axis, as on the torch side; a padded one reaching it is underutilized.
    covers = [not transposed and padding == "valid" and o == 1 and n > 1 and d * (k - 1) + 1 >= n
              for n, o, k, d in zip(sizes_in, out, kernel, dilation)]
    window, new_layout = slide(layout, dims, kernel, stride, dilation, out, builder.ndim, transposed, covers)
    if out_channels is not None:
        new_layout = new_layout.with_dim(channel, pieces(FEATURES, 1, out_channels), out_channels)
    builder.flops += 2 * macs_per_output * math.prod(new_layout.shape)
    literals = builder.literal_sites(path, layout, dims)
    node = builder.add(name, op_type, "conv_transpose" if transposed else kind, inputs, window, path, literals)
    return Tensor(node, new_layout)


def _conv(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    op_type = call.kind
    rank = len(_tuple(config["kernel_size"], 1)) if isinstance(config["kernel_size"], (list, tuple)) else _rank_of(op_type)
    kernel = tuple(int(k) for k in _tuple(config["kernel_size"], rank))
    x = args[0]
    channel_dim = 1 if config.get("data_format") == "channels_first" else x.layout.rank - 1
    in_channels = x.layout.shape[channel_dim]
    transposed = "Transpose" in op_type or op_type.startswith("Deconvolution")
    depthwise = "Depthwise" in op_type
    separable = "Separable" in op_type
    multiplier = int(config.get("depth_multiplier", 1))
    out_channels = in_channels * multiplier if depthwise else int(config["filters"])
    groups = int(config.get("groups", 1) or 1)
    per_output = math.prod(kernel) * (1 if depthwise else in_channels // groups)
    if separable:  # depthwise then pointwise, per output position
        per_output = math.prod(kernel) * in_channels * multiplier // out_channels + in_channels * multiplier
    return _sliding(builder, name, path, config, args, kind="conv", op_type=op_type, kernel=kernel,
                    stride=tuple(int(s) for s in _tuple(config.get("strides", 1), rank)),
                    dilation=tuple(int(d) for d in _tuple(config.get("dilation_rate", 1), rank)),
                    padding=config.get("padding", "valid"), out_channels=out_channels, transposed=transposed,
                    output_padding=None if config.get("output_padding") is None else _tuple(config["output_padding"], rank),
                    macs_per_output=per_output)


def _pool(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    op_type = call.kind
    rank = _rank_of(op_type)
    kernel = tuple(int(k) for k in _tuple(config["pool_size"], rank))
    strides = config.get("strides")
    stride = kernel if strides is None else tuple(int(s) for s in _tuple(strides, rank))
    return _sliding(builder, name, path, config, args, kind="pool", op_type=op_type, kernel=kernel, stride=stride,
                    dilation=(1,) * rank, padding=config.get("padding", "valid"), out_channels=None)


def _mixing(builder: GraphBuilder, name: str, path: str, op_type: str, x: Tensor, dims: Iterable[int],
            out: Layout, bounded_kind: str) -> Tensor:
    """A node that mixes every position along ``dims`` of ``x`` (Dense, global pooling,
    softmax), with the op the layout algebra derives."""
    op, out = mixing_op(mixed(x.layout, dims), out, builder.ndim, x.layout)
    if bounded_kind == "linear" and op is rf.NEUTRAL:  # a channels-only Dense: a 1x1, as torch's Linear
        op = rf.Window((1,) * builder.ndim, (1,) * builder.ndim, (1,) * builder.ndim)
    return Tensor(builder.add(name, op_type, _kind_of(op, bounded_kind, builder.ndim), [x], op, path), out)


def _kind_of(op, bounded_kind: str, ndim: int) -> str:
    """The node kind of a mixing op: neutral if it mixes nothing, global if it sees every
    axis whole, else ``bounded_kind`` (a Dense stays linear, as torch's Linear)."""
    if op is rf.NEUTRAL:
        return "neutral"
    if bounded_kind != "linear" and op.unbounded and not _bounded_axes(op, ndim):
        return "global"
    return bounded_kind


def _bounded_axes(op: rf.Window, ndim: int) -> bool:
    return any(a not in op.unbounded and (op.kernel[a] > 1 or op.stride[a] != 1) for a in range(ndim))


def _dense(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    x = args[0]
    units = int(config["units"])
    last = x.layout.rank - 1
    built = (_built_shape(call.build_config) or [None])[-1]
    if built is not None and built != x.layout.shape[last]:
        raise KerasConfigError(f"Dense '{path}' was built for {built} features, gets {x.layout.shape[last]} at input "
                               f"resolution {'x'.join(map(str, builder.res))} (a Flatten before it fixes the resolution)")
    builder.flops += 2 * math.prod(x.layout.shape) * units
    out = x.layout.with_dim(last, pieces(FEATURES, 1, units), units)
    return _mixing(builder, name, path, "Dense", x, [last], out, "linear")


def _built_shape(build_config: dict | None):
    shape = (build_config or {}).get("input_shape")
    return shape if isinstance(shape, list) and shape and not isinstance(shape[0], list) else None


def _global_pool(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    x = args[0]
    op_type = call.kind
    rank, dims = _own_dims(builder, call, x)
    if config.get("keepdims"):
        out = x.layout
        for d in dims:
            out = out.with_dim(d, (), 1)
    else:
        kept = [d for d in range(x.layout.rank) if d not in dims]
        out = Layout(tuple(x.layout.dims[d] for d in kept), tuple(x.layout.shape[d] for d in kept))
    return _mixing(builder, name, path, op_type, x, dims, out, "pool")


def _attention(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    """MultiHeadAttention: each query reads every key and value position along the
    attention axes (default: every axis but batch and features); the output keeps the
    query's positions. As on the torch side, the query passes unmixed and the key and
    value through the mixing, each on its own edge."""
    query = args[0]
    value = args[1] if len(args) > 1 else (kwargs.get("value") or [query])[0]
    key = args[2] if len(args) > 2 else (kwargs.get("key") or [value])[0]
    axes = call.config.get("attention_axes")
    width = call.config.get("output_shape") or query.layout.shape[-1]
    width = int(math.prod(width)) if isinstance(width, (list, tuple)) else int(width)
    out = query.layout.with_dim(query.layout.rank - 1, pieces(FEATURES, 1, width), width)
    edge_ops = [rf.NEUTRAL]
    for keyed in (key, value):
        rank = keyed.layout.rank
        dims = [a % rank for a in _tuple(axes, 1)] if axes is not None else list(range(1, rank - 1))
        op, _ = mixing_op(mixed(keyed.layout, dims), out, builder.ndim, keyed.layout)
        edge_ops.append(op)
    windows = [op for op in edge_ops if op is not rf.NEUTRAL]
    kind = "neutral" if not windows else "global" if all(_kind_of(op, "attention", builder.ndim) == "global"
                                                          for op in windows) else "attention"
    builder.nodes.append(GraphNode(call.name, "MultiHeadAttention", kind, (query.node, key.node, value.node), rf.NEUTRAL,
                                   edge_ops=tuple(edge_ops), module_path=call.path))
    return Tensor(len(builder.nodes) - 1, out)


def _softmax(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    x = args[0]
    axes = [a % x.layout.rank for a in _tuple(config.get("axis", -1), 1)]
    return _mixing(builder, name, path, "Softmax", x, axes, x.layout, "attention")


def _own_dims(builder: GraphBuilder, call: LayerCall, x: Tensor) -> tuple[int, list[int]]:
    """(rank, dimensions) a ``...1D/2D/3D`` layer acts on, by its data format."""
    rank = _rank_of(call.kind)
    return rank, builder.spatial_dims(x.layout, rank, call.config, f"{call.kind} '{call.path}'")


def _resize_dims(builder: GraphBuilder, name: str, path: str, op_type: str, x: Tensor, dims, sizes) -> Tensor:
    window, out = resample(x.layout, dims, sizes, builder.ndim)
    return Tensor(builder.add(name, op_type, "resample", [x], window, path), out)


def _upsampling(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    x = args[0]
    op_type = call.kind
    rank, dims = _own_dims(builder, call, x)
    factors = _tuple(config.get("size", 2), rank)
    return _resize_dims(builder, name, path, op_type, x, dims, [x.layout.shape[d] * int(f) for d, f in zip(dims, factors)])


def _resizing(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    x = args[0]
    dims = builder.spatial_dims(x.layout, 2, config, f"Resizing '{path}'") if x.layout.rank == 4 else [-3, -2]
    return _resize_dims(builder, name, path, call.kind, x, dims, [int(config["height"]), int(config["width"])])


def _edges(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    """ZeroPadding and Cropping change the map's size, not its positions' fields."""
    x = args[0]
    op_type = call.kind
    rank, dims = _own_dims(builder, call, x)
    amounts = config.get("padding", config.get("cropping", 1))
    per_axis = _tuple(amounts, rank) if not isinstance(amounts, (list, tuple)) or rank > 1 else (amounts,)
    sign = 1 if op_type.startswith("ZeroPadding") else -1
    layout = x.layout
    for dim, amount in zip(dims, per_axis):
        before, after = _tuple(amount, 2)
        size = layout.shape[dim] + sign * (int(before) + int(after))
        if size < 1:
            raise KerasConfigError(f"{op_type} '{path}' crops a {layout.shape[dim]}-long axis to nothing")
        carried = [p for p in layout.dims[dim] if p.spatial]
        if len(layout.dims[dim]) > 1:
            raise LayoutError("padding a dimension that holds part of an axis")
        new = pieces(carried[0].axis, carried[0].step, size) if carried else pieces(FEATURES, 1, size)
        layout = layout.with_dim(dim, new, size)
    return Tensor(builder.add(name, op_type, "neutral", [x], path=path), layout)


def _reshape(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    x = args[0]
    target = [int(n) for n in config["target_shape"]]
    total = math.prod(x.layout.shape[1:])
    if -1 in target:
        known = math.prod(n for n in target if n != -1)
        target[target.index(-1)] = total // known if known else 0
    if math.prod(target) != total:
        raise KerasConfigError(f"Reshape '{path}' cannot make {tuple(target)} of {x.layout.shape[1:]} at input "
                               f"resolution {'x'.join(map(str, builder.res))}")
    return Tensor(builder.add(name, "Reshape", "neutral", [x], path=path), x.layout.reshape((1, *target)))


def _flatten(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    layout = args[0].layout
    if config.get("data_format") == "channels_first" and layout.rank > 2:
        layout = layout.permute((0, *range(2, layout.rank), 1))  # Keras flattens channels-last order
    flat = layout.reshape((1, math.prod(layout.shape[1:])))
    return Tensor(builder.add(name, "Flatten", "neutral", args, path=path), flat)


def _permute(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    order = (0, *(int(d) for d in config["dims"]))
    return Tensor(builder.add(name, "Permute", "neutral", args, path=path), args[0].layout.permute(order))


def _concatenate(builder: GraphBuilder, call: LayerCall, args, kwargs) -> Tensor:
    name, path, config = call.name, call.path, call.config
    rank = args[0].layout.rank
    axis = int(config.get("axis", -1)) % rank
    shapes = [t.layout.shape for t in args]
    if any(len(s) != rank or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
        raise KerasConfigError(f"Concatenate '{path}' gets shapes {[s[1:] for s in shapes]} at input resolution "
                               f"{'x'.join(map(str, builder.res))}")
    if any(p.spatial for t in args for p in t.layout.dims[axis]):
        raise LayoutError("concatenation along a spatial dimension")
    total = sum(s[axis] for s in shapes)
    out = args[0].layout.with_dim(axis, pieces(FEATURES, 1, total), total)
    return Tensor(builder.add(name, "Concatenate", "neutral", args, path=path), out)


CONVS = ("Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D", "DepthwiseConv1D",
         "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D",
         "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "Convolution2DTranspose", "Convolution3DTranspose",
         "Deconvolution2D", "Deconvolution3D")
POOLS = ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
         "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D")
GLOBAL_POOLS = ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D",
                "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
                "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D")
HANDLERS: dict[str, Callable[..., Tensor]] = {
    **{kind: _conv for kind in CONVS},
    **{kind: _pool for kind in POOLS},
    **{kind: _global_pool for kind in GLOBAL_POOLS},
    **{f"{kind}{rank}D": _edges for kind in ("ZeroPadding", "Cropping") for rank in (1, 2, 3)},
    **{f"UpSampling{rank}D": _upsampling for rank in (1, 2, 3)},
    "Resizing": _resizing,
    "Dense": _dense,
    "MultiHeadAttention": _attention,
    "Softmax": _softmax,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Permute": _permute,
    "Concatenate": _concatenate,
}


def graph_from_config(model: dict, input_res: int | Sequence[int], *,
                      literals: Callable[[str], LayerLiterals | None] | None = None) -> KerasGraph:
    """The core graph of a Keras model config at ``input_res`` (an int applies to every axis).

    ``literals`` gives, for a live model, where each layer's strides and kernel were written.
    Raises KerasConfigError with a one-line reason for a config it cannot read or a model
    that cannot run at that resolution.
    """
    if not isinstance(model, dict) or "class_name" not in model:
        raise KerasConfigError("not a Keras model config (no 'class_name')")
    ndim, channels_last = input_spec(model)
    try:
        res = as_resolution(input_res, ndim)
    except ValueError as error:
        raise KerasConfigError(str(error)) from error
    builder = GraphBuilder(ndim, res, channels_last, literals)
    try:
        outputs = builder.top(model)
    except (KeyError, TypeError, IndexError) as error:
        raise KerasConfigError(f"malformed layer config: {type(error).__name__}: {error}") from error
    shape = outputs[0].layout.shape if outputs else None
    return KerasGraph(LayerGraph(builder.nodes, ndim, shape, "keras"), res, builder.flops, builder.paths)

