"""The two captures: torch.fx, and the eager recording rflint falls back to when fx cannot
trace a model. Both must give the same layers and receptive fields."""

import functools
import json

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import rflint
from rflint import analyze
from rflint.frontends.torch import analysis
from rflint.frontends.torch.capture import _broadcast, _concatenation, _conv_output, capture_fx, is_torch_function, known_output
from rflint.frontends.torch.capture_eager import capture_eager


def eager_only(model, input_res, channels, traced=None):
    """``analysis.capture`` that records while running, as for a model fx cannot trace."""
    return capture_eager(model, input_res, channels)


class Branchy(nn.Module):
    """Python control flow on shapes: everything fx refuses, nothing the model can't run.

    stem 3x3/2 -> r 3, j 2; max-pool 2/2 (only above 100 px) -> r 5, j 4; each 3x3 conv
    in the loop -> 5 + 2 * 4 = 13, the residual keeps 5 as the least field after it;
    strided slice [::2] -> r 5, j 8.
    """

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.convs = nn.ModuleList(nn.Conv2d(8, 8, 3, padding=1) for _ in range(4))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        assert x.dim() == 4
        x = self.stem(x)
        if x.shape[-1] > 100:
            x = F.max_pool2d(x, 2)
        for i in range(x.size(1) // 4):
            x = x + self.convs[i](x)
        batch = len(x)
        x = F.relu(x, inplace=True)[..., ::2, ::2]
        return self.head(x.mean((2, 3)).view(batch, -1))


def test_fx_cannot_trace_the_branchy_model():
    with pytest.raises(Exception):
        capture_fx(Branchy(), (224, 224), 3)


def test_control_flow_on_shapes_falls_back_to_eager():
    result = analyze(Branchy, 224)
    assert result.capture == "eager"
    assert [(layer.name, layer.kind, layer.r_min) for layer in result.layers] == [
        ("stem", "conv", (3, 3)),
        ("max_pool2d", "pool", (5, 5)),
        ("convs.0", "conv", (13, 13)),
        ("convs.1", "conv", (13, 13)),
        ("getitem", "pool", (5, 5)),
    ]
    assert result.i_min == (13, 13)
    assert result.i_max == (21, 21)  # both convs in a row: 5 + 8 + 8


def test_eager_runs_the_branch_the_resolution_takes():
    """At 64 px the stem gives 31 columns: no pooling, so the convs see a jump of 2."""
    result = analyze(Branchy, 64)
    assert [layer.name for layer in result.layers] == ["stem", "convs.0", "convs.1", "getitem"]
    assert result.layer("convs.0").r_min == (7, 7)


def test_eager_call_sites_point_at_the_functional_call():
    result = analyze(Branchy, 224)
    site = result.layer("max_pool2d").called_at
    assert site.file == __file__
    assert "F.max_pool2d(x, 2)" in open(__file__).read().splitlines()[site.line - 1]


class InPlace(nn.Module):
    """In-place ops return a tensor that already has a producer: the chain must go
    through them, or the convs after them would look unreachable."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.b = nn.Conv2d(4, 4, 5, padding=2)

    def forward(self, x):
        x = self.a(x)
        x.relu_()
        x += 1
        F.relu(x, inplace=True)
        return self.b(x)


@pytest.mark.parametrize("capture", [capture_fx, eager_only])
def test_in_place_ops_keep_the_chain(monkeypatch, capture):
    monkeypatch.setattr(analysis, "capture", capture)
    assert analyze(InPlace, 32).layer("b").r_min == (7, 7)


class SetItem(nn.Module):
    """``x[...] = y`` (which fx cannot trace) makes ``x`` depend on ``y`` too."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.b = nn.Conv2d(4, 4, 5, padding=2)
        self.c = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.a(x)
        x[:, :2] = self.b(x)[:, :2]
        return self.c(x)


def test_setitem_links_the_written_value():
    result = analyze(SetItem, 32)
    assert result.capture == "eager"
    assert result.layer("c").r_min == (5, 5)
    assert result.layer("c").r_max == (9, 9)


class Attention(nn.Module):
    """A leaf module with leaf children (MultiheadAttention holds a Linear) is one node."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.after = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = self.attn(tokens, tokens, tokens)[0]
        return x + self.after(tokens.transpose(1, 2).reshape(b, c, h, w))


def test_leaf_modules_are_single_nodes_in_both_captures():
    model = Attention().to("meta").eval()
    for capture in (capture_fx, capture_eager):
        nodes = capture(model, (16, 16), 3).nodes
        assert [n.name for n in nodes if n.module_path] == ["conv", "attn", "after"]
        assert next(n for n in nodes if n.name == "attn").kind == "global"


def test_when_both_captures_fail_the_eager_error_is_raised():
    class TooSmall(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 7)

        def forward(self, x):
            if x.shape[-1] > 0:  # fx: control flow
                return self.conv(x)

    with pytest.raises(analysis.CaptureError, match="Kernel size can't be greater than actual input size"):
        analyze(TooSmall, 4)


class ChannelGate(nn.Module):
    """ECA's gate: a Conv1d over the channels of the pooled vector, shaped by ``x.shape[0]``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.gate = nn.Conv1d(1, 1, 5, padding=2)

    def forward(self, x):
        x = self.conv(x)
        y = self.gate(x.mean((2, 3)).view(x.shape[0], 1, -1)).sigmoid()
        return x * y.view(x.shape[0], -1, 1, 1)


@pytest.mark.parametrize("capture", [capture_fx, eager_only])
def test_a_size_carries_no_pixels(monkeypatch, capture):
    """fx sees ``x.shape[0]`` as a node fed by ``x``; linking through it would give the
    Conv1d on the globally pooled vector a bounded field of 3 + 4 = 7."""
    monkeypatch.setattr(analysis, "capture", capture)
    result = analyze(ChannelGate, 32)
    assert result.layer("gate").r_min is None
    assert result.i_min == (3, 3)


# Not swin: torchvision hides its patch merging from fx (torch.fx.wrap), the eager capture
# sees the strided slices inside it (on channels-last tensors, which rflint reads as NCHW).
AGREEING = {  # a dozen torchvision models fx traces; the eager recording must match them
    "resnet18": 224, "resnet50": 224, "vgg16": 224, "densenet121": 224, "googlenet": 224,
    "inception_v3": 299, "mobilenet_v3_small": 224, "efficientnet_b0": 224, "mnasnet0_5": 224,
    "shufflenet_v2_x1_0": 224, "squeezenet1_1": 227, "regnet_y_400mf": 224, "convnext_tiny": 224,
    "vit_b_16": 224, "maxvit_t": 224,
}


def _layers(result):
    return [(layer.name, layer.kind, layer.r_min, layer.r_max, layer.called_at) for layer in result.layers]


@pytest.mark.parametrize("name", sorted(AGREEING))
def test_eager_capture_matches_fx_on_torchvision(monkeypatch, name):
    factory = functools.partial(tvm.get_model, name, weights=None)
    by_fx = analyze(factory, AGREEING[name])
    monkeypatch.setattr(analysis, "capture", eager_only)
    by_eager = analyze(factory, AGREEING[name])
    assert (by_fx.capture, by_eager.capture) == ("fx", "eager")
    assert (by_eager.i_min, by_eager.i_max) == (by_fx.i_min, by_fx.i_max)
    assert _layers(by_eager) == _layers(by_fx)
    assert by_eager.unknown_ops == by_fx.unknown_ops


def test_json_reports_the_capture(tmp_path):

    model_file = tmp_path / "branchy.py"
    model_file.write_text(
        "import torch.nn.functional as F\nfrom torch import nn\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n\n"
        "    def forward(self, x):\n"
        "        for _ in range(len(x)):\n"
        "            x = self.conv(x)\n"
        "        return x\n"
    )
    run = rflint(model_file, "--input-res", "32", "--format", "json", "--no-cache", cwd=tmp_path)
    [model] = json.loads(run.stdout)["models"]
    assert (model["name"], model["status"], model["capture"]) == ("Net", "analyzed", "eager")


# ---------------------------------------------------------------------------------------
# Shapes computed without running a kernel must be the kernel's shapes
# ---------------------------------------------------------------------------------------

CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_conv_output_by_formula_is_the_meta_kernels_or_left_to_it(data):
    """``_conv_output`` skips the conv's meta kernel on the fast path: it must give the
    kernel's shape, and leave every input the kernel rejects to the kernel (its error
    is the RF903 message)."""
    axes = data.draw(st.sampled_from([1, 2, 3]))
    ints = lambda low, high: st.tuples(*(st.integers(low, high) for _ in range(axes)))  # noqa: E731
    kernel, dilation = data.draw(ints(1, 5)), data.draw(ints(1, 2))
    padding = data.draw(st.one_of(st.just("valid"), st.just("same"), ints(0, 3), st.integers(0, 2)))
    stride = (1,) * axes if padding == "same" else data.draw(ints(1, 3))
    mode = data.draw(st.sampled_from(["zeros", "reflect", "circular"]))
    conv = CONVS[axes](4, 6, kernel, stride, padding, dilation, padding_mode=mode, device="meta")
    x = torch.empty(2, data.draw(st.sampled_from([4, 3])), *data.draw(ints(1, 12)), device="meta")
    try:
        expected = tuple(conv(x).shape)
    except RuntimeError:
        expected = None
    formula = _conv_output(conv, x)
    assert formula is None or tuple(formula.shape) == expected


def test_no_tensor_method_is_taken_for_a_torch_function():
    """fx records a Tensor method as ``call_method`` and a function as ``call_function``;
    rflint's fast test must agree with torch's own table on every overridable callable."""
    from torch.overrides import get_overridable_functions, is_tensor_method_or_property

    callables = [f for functions in get_overridable_functions().values() for f in functions]
    assert len(callables) > 1000
    assert [f for f in callables if is_torch_function(f) and is_tensor_method_or_property(f)] == []
    assert sum(map(is_torch_function, callables)) > 500  # and it does take the fast path


shapes = st.lists(st.integers(0, 3), min_size=0, max_size=4)


@settings(max_examples=400, deadline=None)
@given(shapes, shapes)
def test_broadcast_is_torchs(a, b):
    try:
        expected = tuple(torch.broadcast_shapes(a, b))
    except RuntimeError:
        expected = None
    assert _broadcast(a, b) == expected


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_concatenation_by_formula_is_the_meta_kernels_or_left_to_it(data):
    """``torch.cat`` of meta tensors skips the kernel: same shape as the kernel's, and
    every call the kernel rejects (or treats specially) left to it."""
    rank = data.draw(st.integers(1, 4))
    base = data.draw(st.lists(st.integers(0, 3), min_size=rank, max_size=rank))
    dim = data.draw(st.integers(-rank - 1, rank))
    parts = []
    for _ in range(data.draw(st.integers(1, 3))):
        shape = list(base)
        if data.draw(st.booleans()):  # another size along one axis (legal only on ``dim``)
            shape[data.draw(st.integers(0, rank - 1))] = data.draw(st.integers(0, 3))
        if data.draw(st.integers(0, 9)) == 0:
            shape = data.draw(st.sampled_from([[0], [2], [*shape, 1]]))  # another rank, the legacy empty 1-D
        dtype = data.draw(st.sampled_from([torch.float32, torch.float32, torch.float16]))
        parts.append(torch.empty(shape, dtype=dtype, device="meta"))
    try:
        expected = torch.cat(parts, dim)
        expected = (tuple(expected.shape), expected.dtype)
    except (RuntimeError, IndexError):
        expected = None
    formula = _concatenation((parts, dim), {})
    assert formula is None or (tuple(formula.shape), formula.dtype) == expected


class SpatialLayerNorm(nn.Module):
    """Normalizes over (H, W): it runs at 32 px and at no other resolution."""

    def __init__(self, functional: bool):
        super().__init__()
        self.functional = functional
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm([16, 16])

    def forward(self, x):
        x = self.conv(x)
        return F.layer_norm(x, (16, 16)) if self.functional else self.norm(x)


@pytest.mark.parametrize("functional", [False, True], ids=["module", "function"])
def test_skipping_a_norms_kernel_still_proves_the_model_runs(functional):
    """Norm kernels are skipped for speed, never their size checks: a fix that changes
    H and W must not be verified on a model that would no longer run."""
    model = SpatialLayerNorm(functional)
    assert analyze(model, 32).i_min == (3, 3)
    with pytest.raises(analysis.CaptureError, match="normalized_shape"):
        analyze(model, 64)
    bn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(4))  # 8 channels into a 4-channel BatchNorm
    with pytest.raises(analysis.CaptureError):
        analyze(bn, 32)


class Tagged(torch.Tensor):
    """A tensor subclass: torch's default ``__torch_function__`` keeps it through every op."""


@pytest.mark.parametrize("call", [
    lambda x: (torch.relu, (x,), {}),
    lambda x: (torch.cat, ([x, x],), {"dim": 1}),
    lambda x: (torch.add, (torch.empty(1, 4, 8, 8, device="meta"), x), {}),
])
def test_shapes_by_formula_only_for_plain_tensors(call):
    """The shortcut makes plain tensors: a subclass's own op runs and keeps its type."""
    plain = torch.empty(1, 4, 8, 8, device="meta")
    target, args, kwargs = call(plain)
    shortcut = known_output(target, args, kwargs)
    assert type(shortcut) is torch.Tensor and shortcut.shape == target(*args, **kwargs).shape
    target, args, kwargs = call(plain.as_subclass(Tagged))
    assert known_output(target, args, kwargs) is None
    assert type(target(*args, **kwargs)) is Tagged


class KeepsPositives(nn.Module):
    """A detection-style forward: the kept values depend on the data."""

    def __init__(self, keep):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.keep = keep

    def forward(self, x):
        return self.keep(self.conv(x))


@pytest.mark.parametrize("keep, op", [
    (lambda y: y[y > 0], "torch.nonzero"),
    (lambda y: torch.unique(y), "unique2"),
    (lambda y: y * y.max().item(), "Tensor.item()"),
])
def test_a_forward_that_reads_tensor_values_gets_a_plain_reason(keep, op):
    """torch's own message suggests a setting of torch's; the reason says what happened."""
    with pytest.raises(analysis.CaptureError) as failure:
        analyze(KeepsPositives(keep), 32)
    assert failure.value.reason.startswith(f"the forward reads tensor values ({op}), which a meta-device run")
    assert str(failure.value) == failure.value.reason


def test_other_capture_failures_keep_torch_s_message():
    with pytest.raises(analysis.CaptureError) as failure:
        analyze(nn.Sequential(nn.Conv2d(3, 4, 5)), 2)
    assert failure.value.reason is None and "Kernel size can't be greater" in str(failure.value)


class SamePadConv(nn.Conv2d):
    """timm's ``Conv2dSame``: pads in its own forward, then convolves without padding."""

    def forward(self, x):
        return super().forward(F.pad(x, (1, 1, 1, 1)))


class SamePadResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.same = SamePadConv(8, 8, 3)

    def forward(self, x):
        x = self.stem(x)
        return x + self.same(x)


def test_a_conv_with_its_own_forward_runs_in_the_fx_capture():
    """The output-size formula is torch's conv's: given to a subclass that pads first, it
    made the residual add fail in the graph (timm's MaxViT-TF and NFNet)."""
    result = analyze(SamePadResidual, 32)
    assert result.capture == "fx"
    assert result.i_min == (5, 5)


def test_a_shape_error_in_the_fx_run_is_not_run_again_eagerly(monkeypatch):
    """A torch op that refuses the graph's shapes refuses the model's own forward too (a
    CIFAR classifier at 224 px fails at its Linear): an eager run would only cost its time."""
    monkeypatch.setattr(analysis, "capture_eager", lambda *args: pytest.fail("ran eagerly"))

    def cifar():
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 32 * 32, 10))

    assert analyze(cifar, 32).capture == "fx"
    with pytest.raises(analysis.CaptureError, match="same reduction dim"):
        analyze(cifar, 64)
