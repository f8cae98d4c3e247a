"""The layout algebra checked by gradient extent on real tensors (METHOD.md, "Beyond NCHW").

Hypothesis builds random single-path nets from blocks that move positions between tensor
dimensions the way modern networks do (space-to-depth by reshape and permute, pixel
unshuffle, unfold, patch merging, channels-last and token-major Linears, a Conv1d along one
axis), with convolutions and average pools between them, and optionally a last block that
is not translation invariant (window attention, pixel shuffle). With positive weights and
no bias, the input gradient of one central output position (all its channels) is non-zero
exactly on the pixels it reads, so its extent per axis must equal rflint's r_max (I_max on
a chain). Each block also has a test with its number derived by hand.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import rflint

C = 4  # channels between blocks


def positive(module: nn.Module) -> nn.Module:
    """Weights all positive (averaging over the fan-in, so values stay near 1 and attention
    never saturates) and no bias: no cancellation, so a zero gradient means unread."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                p.uniform_(0.5, 1.0).div_(math.prod(p.shape[1:]))
    return module


def pointwise(channels_in: int) -> nn.Module:
    return positive(nn.Conv2d(channels_in, C, 1, bias=False))


class Conv(nn.Module):
    def __init__(self, k, s, d):
        super().__init__()
        self.conv = positive(nn.Conv2d(C, C, k, stride=s, padding=d * (k // 2), dilation=d, bias=False))
        self.factor = s

    def forward(self, x):
        return self.conv(x)


class Pool(nn.Module):
    def __init__(self, k, s):
        super().__init__()
        self.pool = nn.AvgPool2d(k, stride=s, padding=k // 2, count_include_pad=True)
        self.factor = s

    def forward(self, x):
        return self.pool(x)


class SpaceToDepth(nn.Module):
    """TResNet's: view -> permute -> view, then a 1x1 conv over the p*p*C channels."""

    def __init__(self, p):
        super().__init__()
        self.p, self.factor = p, p
        self.mix = pointwise(C * p * p)

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.p
        x = x.view(b, c, h // p, p, w // p, p).permute(0, 3, 5, 1, 2, 4)
        return self.mix(x.reshape(b, p * p * c, h // p, w // p))


class Unshuffle(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.factor = p
        self.shuffle = nn.PixelUnshuffle(p)
        self.mix = pointwise(C * p * p)

    def forward(self, x):
        return self.mix(self.shuffle(x))


class Unfold(nn.Module):
    """``F.unfold`` windows (overlapping or not) viewed back as an image of k*k*C channels."""

    def __init__(self, k, s):
        super().__init__()
        self.k, self.factor = k, s
        self.mix = pointwise(C * k * k)

    def forward(self, x):
        b, c, h, w = x.shape
        cols = F.unfold(x, self.k, padding=self.k // 2, stride=self.factor)
        return self.mix(cols.view(b, c * self.k * self.k, h // self.factor, w // self.factor))


class ChannelsLastLinear(nn.Module):
    """ConvNeXt's MLP: permute to NHWC, a Linear over channels, permute back: pointwise."""

    factor = 1

    def __init__(self):
        super().__init__()
        self.fc = positive(nn.Linear(C, C, bias=False))

    def forward(self, x):
        return self.fc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class TokenLinear(nn.Module):
    """A ViT's token layout (flatten H and W into tokens) and back: still pointwise."""

    factor = 1

    def __init__(self):
        super().__init__()
        self.fc = positive(nn.Linear(C, C, bias=False))

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.fc(x.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class PatchMerging(nn.Module):
    """Swin's: NHWC, 2x2 neighbours concatenated into channels, a Linear: a 2x2/2 window."""

    factor = 2

    def __init__(self):
        super().__init__()
        self.reduction = positive(nn.Linear(4 * C, C, bias=False))

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.permute(0, 2, 3, 1).reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(x).permute(0, 3, 1, 2)


class ConvAlongWidth(nn.Module):
    """A Conv1d over W only (rows folded into the batch): H is left alone."""

    factor = 1

    def __init__(self, k):
        super().__init__()
        self.conv = positive(nn.Conv1d(C, C, k, padding=k // 2, bias=False))

    def forward(self, x):
        b, c, h, w = x.shape
        rows = x.permute(0, 2, 1, 3).reshape(b * h, c, w)
        return self.conv(rows).reshape(b, h, c, w).permute(0, 2, 1, 3)


class WindowAttention(nn.Module):
    """Swin's window partition, attention inside each w x w window, and the reverse."""

    factor = 1

    def __init__(self, window):
        super().__init__()
        self.window = window

    def forward(self, x):
        b, c, h, w = x.shape
        n = self.window
        tokens = x.view(b, c, h // n, n, w // n, n).permute(0, 2, 4, 3, 5, 1).reshape(-1, n * n, c)
        attention = (tokens @ tokens.transpose(-2, -1)).softmax(-1)
        out = (attention @ tokens).view(b, h // n, w // n, n, n, c)
        return out.permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


class Shuffle(nn.Module):
    """Depth-to-space: upsampling by p (C must be a multiple of p*p)."""

    def __init__(self, p):
        super().__init__()
        self.factor = Fraction(1, p)
        self.shuffle = nn.PixelShuffle(p)

    def forward(self, x):
        return self.shuffle(x)


@st.composite
def blocks(draw):
    kind = draw(st.sampled_from(["conv", "conv", "pool", "s2d", "unshuffle", "unfold", "linear", "tokens",
                                 "merge", "conv1d"]))
    if kind == "conv":
        return Conv(draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 1, 2])), draw(st.integers(1, 2)))
    if kind == "pool":
        return Pool(draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 2])))
    if kind == "s2d":
        return SpaceToDepth(draw(st.sampled_from([2, 4])))
    if kind == "unshuffle":
        return Unshuffle(2)
    if kind == "unfold":
        return Unfold(draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2])))
    if kind == "linear":
        return ChannelsLastLinear()
    if kind == "tokens":
        return TokenLinear()
    if kind == "merge":
        return PatchMerging()
    return ConvAlongWidth(draw(st.sampled_from([3, 5])))


@st.composite
def nets(draw):
    body = draw(st.lists(blocks(), min_size=1, max_size=5))
    last = draw(st.sampled_from([None, None, "window", "shuffle"]))
    if last == "window":
        body.append(WindowAttention(draw(st.sampled_from([2, 3, 4]))))
    elif last == "shuffle":
        body.append(Shuffle(2))
    return nn.Sequential(pointwise(C), *body)  # a 1x1 stem: the input's channels are the first conv's


def gradient_extent(model: nn.Module, size: int) -> tuple[int, int]:
    """Per axis, the span of input pixels whose gradient is non-zero for the sum over the
    channels of the central output position; asserts it stays off the borders."""
    x = (torch.rand(1, C, size, size, dtype=torch.float64) + 0.5).requires_grad_(True)
    y = model(x)
    y[0, :, y.shape[-2] // 2, y.shape[-1] // 2].sum().backward()
    grad = x.grad[0].abs().sum(0)
    spans = []
    for axis in (0, 1):
        hit = torch.nonzero(grad.sum(1 - axis) > 0).flatten()
        lo, hi = int(hit.min()), int(hit.max())
        assert 0 < lo and hi < size - 1, "the central position's field touches the border"
        spans.append(hi - lo + 1)
    return tuple(spans)


def size_for(model: nn.Sequential) -> int:
    """An input size every block divides evenly, big enough for the field to stay inside."""
    factor = 1
    for block in model:
        f = getattr(block, "factor", 1)
        factor *= int(f) if f >= 1 else 1
    window = next((b.window for b in model if isinstance(b, WindowAttention)), 1)
    unit = factor * window
    estimate = rflint.analyze(model, input_res=unit * max(4, math.ceil(64 / unit)))
    need = 3 * max(estimate.i_max) + 4 * factor * window + 8
    return unit * math.ceil(need / unit)


def check_against_gradient(model: nn.Sequential) -> None:
    model = model.double().eval()
    size = size_for(model)
    assume(size <= 1024)
    result = rflint.analyze(model, input_res=size)
    assert result.unknown_ops == {}, result.unknown_ops
    assert gradient_extent(model, size) == result.i_max, [type(b).__name__ for b in model]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(model=nets())
def test_r_max_equals_gradient_extent_through_layouts(model):
    check_against_gradient(model)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(model=nets())
def test_r_max_equals_gradient_extent_through_layouts_long(model):
    check_against_gradient(model)


# Each block by hand: r and jump per axis, from (r, j) = (1, 1) at the input.


def analyzed(*blocks, size=64):
    return rflint.analyze(nn.Sequential(pointwise(C), *blocks).double().eval(), input_res=size)


def test_space_to_depth_by_reshape_is_a_window_of_the_block():
    # s2d by 4: r = 4, j = 4; a 3x3 conv after it: 4 + 2 * 4 = 12 (TResNet's stem).
    result = analyzed(SpaceToDepth(4), Conv(3, 1, 1))
    assert result.i_max == (12, 12) and result.i_min == (12, 12)
    assert result.layers[1].kind == "pool" and result.layers[1].stride == (4, 4)  # after the 1x1 stem


def test_pixel_unshuffle_and_unfold_are_windows():
    # unshuffle 2: r = 2, j = 2; unfold 3 stride 1: 2 + 2 * 2 = 6.
    assert analyzed(Unshuffle(2), Unfold(3, 1)).i_max == (6, 6)
    # unfold 3 stride 2: r = 3, j = 2; a 3x3 conv: 3 + 2 * 2 = 7.
    assert analyzed(Unfold(3, 2), Conv(3, 1, 1)).i_max == (7, 7)


def test_channels_last_and_token_linears_are_pointwise():
    # conv 3: 3; Linears over channels, in NHWC or as tokens, add nothing.
    result = analyzed(Conv(3, 1, 1), ChannelsLastLinear(), TokenLinear())
    assert result.i_max == (3, 3) and result.unknown_ops == {}


def test_patch_merging_is_a_2x2_window_with_stride_2():
    # conv 3: r = 3, j = 1; merge: 3 + 1 = 4, j = 2; conv 3: 4 + 2 * 2 = 8.
    assert analyzed(Conv(3, 1, 1), PatchMerging(), Conv(3, 1, 1)).i_max == (8, 8)


def test_conv1d_along_width_leaves_height_alone():
    # conv 3 (3, 3), then a Conv1d of 5 along W: (3, 3 + 4) = (3, 7).
    assert analyzed(Conv(3, 1, 1), ConvAlongWidth(5)).i_max == (3, 7)


def test_window_attention_is_a_window_of_its_size():
    # conv 3 stride 2: r = 3, j = 2; 4x4 windows: 3 + 3 * 2 = 9.
    result = analyzed(Conv(3, 2, 1), WindowAttention(4))
    assert result.i_max == (9, 9) and result.i_min == (9, 9)


def test_attention_over_the_whole_map_is_global():
    # 8x8 windows on the 8x8 map of a 64 px input after stride 8: everything is read.
    result = analyzed(Conv(3, 8, 1), WindowAttention(8))
    assert result.i_min == (3, 3) and not any(layer.kind == "attention" and layer.bounded for layer in result.layers)


def test_fixed_pool_covering_the_map_is_global():
    # AvgPool2d(8) on the 8x8 map (stride 8 before it): the classifier's global pool, not
    # a window: I_min stays the conv's 3 (pytorchcv's fixed AvgPool2d(7) heads).
    result = analyzed(Conv(3, 8, 1), nn.AvgPool2d(8))
    assert result.i_min == (3, 3)
    assert result.layers[-1].kind == "pool" and not result.layers[-1].bounded
