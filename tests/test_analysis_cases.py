"""The cases the paper's own tool gets wrong, each on a real PyTorch model through
``rflint.analyze`` (build on meta, torch.fx capture, receptive-field math)."""

import torch
import torch.nn.functional as F
from torch import nn

import rflint


def r_min_of(model, res, layer=None):
    result = rflint.analyze(model, input_res=res)
    return result.layer(layer).r_min if layer else result.i_min


def test_dilation_two_3x3_convs_with_dilation_2_give_9():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, dilation=2, padding=2), nn.Conv2d(8, 8, 3, dilation=2, padding=2))
    assert r_min_of(model, 32) == (9, 9)


class Upsampled(nn.Module):
    def __init__(self, functional):
        super().__init__()
        self.functional = functional
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = self.down(x)
        x = F.interpolate(x, scale_factor=2.0) if self.functional else self.up(x)
        return self.conv(x)


def test_upsampling_divides_the_jump_module_and_functional():
    for functional in (False, True):
        assert r_min_of(Upsampled(functional), 32) == (5, 5)


def test_transposed_conv_divides_the_jump_by_its_stride():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 4, stride=4),            # r 4, jump 4
        nn.ConvTranspose2d(8, 8, 2, stride=2),   # jump 2, r 4 + (2-1)*2 = 6
        nn.Conv2d(8, 8, 3, padding=1),           # r 6 + 2*2 = 10
    )
    result = rflint.analyze(model, input_res=64)
    assert result.layer("1").jump == (2, 2)
    assert result.i_min == (10, 10)


class GlobalMean(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 7, stride=2, padding=3)
        self.after = nn.Linear(8, 8)

    def forward(self, x):
        return self.after(self.conv(x).mean((2, 3)))


def test_functional_global_mean_is_unbounded_like_adaptive_pooling():
    result = rflint.analyze(GlobalMean(), input_res=32)
    assert result.i_min == (7, 7)
    assert [layer.name for layer in result.layers] == ["conv"]  # the Linear sees everything


def test_conv1d_and_conv3d():
    audio = nn.Sequential(nn.Conv1d(1, 8, 9, stride=4), nn.Conv1d(8, 8, 5, stride=2), nn.Conv1d(8, 8, 3))
    assert rflint.analyze(audio, input_res=16000).i_min == (41,)
    video = nn.Sequential(nn.Conv3d(3, 8, (3, 7, 7), stride=(1, 2, 2)), nn.Conv3d(8, 8, 3))
    assert rflint.analyze(video, input_res=(16, 112, 112)).i_min == (5, 11, 11)


class ChunkShuffle(nn.Module):
    """ShuffleNet's split, Res2Net's chunk: multi-output ops feeding different branches."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.branch = nn.Conv2d(8, 8, 5, padding=2)
        self.tail = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        left, right = torch.chunk(x, 2, dim=1)
        a, b = x.split(8, dim=1)
        mixed = torch.cat([left, self.branch(right)], dim=1) + torch.cat([a, b], dim=1)
        return self.tail(mixed)


def test_chunk_and_split_keep_every_path():
    result = rflint.analyze(ChunkShuffle(), input_res=32)
    assert result.layer("branch").r_min == (7, 7)
    assert result.layer("tail").r_min == (5, 5)  # through the un-convolved halves
    assert result.layer("tail").r_max == (9, 9)  # through the branch
    assert result.unknown_ops == {}


class SamePadConv(nn.Module):
    """timm's same-padding conv: F.pad then a functional conv with the module's weight."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(8, 3, 5, 5))
        self.next = nn.Conv2d(8, 8, 3, stride=2)

    def forward(self, x):
        x = F.pad(x, [1, 2, 1, 2])
        x = F.conv2d(x, self.weight, None, 2, 0, 1, 1)
        return self.next(F.pad(x, [0, 1, 0, 1]))


def test_functional_conv_after_f_pad_reads_kernel_from_the_weight():
    result = rflint.analyze(SamePadConv(), input_res=32)
    conv = next(layer for layer in result.layers if layer.kind == "conv" and layer.name != "next")
    assert conv.kernel == (5, 5) and conv.stride == (2, 2)
    assert conv.called_at.file.endswith("test_analysis_cases.py")
    assert result.layer("next").r_min == (9, 9)


def test_non_square_kernels_grow_each_axis_on_its_own():
    model = nn.Sequential(nn.Conv2d(3, 8, (1, 7), padding=(0, 3)), nn.Conv2d(8, 8, (7, 1), padding=(3, 0)))
    result = rflint.analyze(model, input_res=(20, 30))
    assert result.layer("0").r_min == (1, 7)
    assert result.layer("1").r_min == (7, 7)
    assert result.underutilized((6, 30)) == [result.layer("1")]


def test_unknown_ops_are_counted_and_located():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return torch.special.i0(self.conv(x))

    result = rflint.analyze(Odd(), input_res=16)
    assert result.unknown_ops == {"special_i0": 1}
    assert result.neutral_ops == result.unknown_ops  # 0.1's name, kept one version
    [call] = result.unknown
    assert call.called_at.line == Odd.forward.__code__.co_firstlineno + 1
