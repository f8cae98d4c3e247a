"""Each construct of issue 13 through the torch front end, with its number derived by hand.

(r, j) start at (1, 1) on the input; a window k with stride s gives r + (k - 1) * j, j * s.
"""

import torch
import torch.nn.functional as F
from torch import nn

import rflint


def conv(c_in=3, c_out=8, k=3, s=1):
    return nn.Conv2d(c_in, c_out, k, stride=s, padding=k // 2)


class Focus(nn.Module):
    """YOLOv5's stem: four strided slices side by side in channels, then a conv."""

    def __init__(self):
        super().__init__()
        self.conv = conv(12)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


def test_focus_slices_are_a_2x2_patchify():
    # 2x2 window stride 2: r = 2, j = 2; conv 3: 2 + 2 * 2 = 6
    result = rflint.analyze(Focus(), input_res=32)
    assert result.i_min == (6, 6) and result.unknown_ops == {}


class Outlook(nn.Module):
    """VOLO's outlook pattern: unfold 3x3 windows, mix inside them, fold back."""

    def __init__(self):
        super().__init__()
        self.stem = conv()

    def forward(self, x):
        x = self.stem(x)
        b, c, h, w = x.shape
        cols = F.unfold(x, 3, padding=1)  # (B, C*9, H*W)
        return F.fold(cols * 2, (h, w), 3, padding=1)


def test_unfold_then_fold_is_two_windows():
    # stem 3; unfold 3: 3 + 2 = 5; fold 3 (a transposed conv of 3, stride 1): 5 + 2 = 7
    result = rflint.analyze(Outlook(), input_res=32)
    assert result.i_min == (7, 7) and result.unknown_ops == {}


class Halo(nn.Module):
    """HaloNet's keys: padded by the halo, cut into overlapping windows by Tensor.unfold."""

    def __init__(self):
        super().__init__()
        self.stem = conv()

    def forward(self, x):
        x = F.pad(self.stem(x), [2, 2, 2, 2])
        windows = x.unfold(2, 12, 8).unfold(3, 12, 8)  # (B, C, nH, nW, 12, 12)
        return windows.mean((-2, -1))


def test_overlapping_tensor_unfold_is_a_window_of_its_size_and_step():
    # stem 3 (j 1); window 12, step 8: 3 + 11 = 14 on each axis; 64 px: 8 blocks
    result = rflint.analyze(Halo(), input_res=64)
    assert result.i_min == (14, 14) and result.unknown_ops == {}
    assert [l.stride for l in result.layers if l.op_type == "unfold"] == [(8, 1), (1, 8)]


class Unpool(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.conv = conv(3, 8)

    def forward(self, x):
        y, indices = self.pool(x)
        return self.conv(self.unpool(y, indices))


def test_max_unpool_upsamples_its_input_and_indices_carry_no_pixels():
    # pool 2/2: r 2, j 2; unpool x2: j 1; conv 3: 2 + 2 = 4
    result = rflint.analyze(Unpool(), input_res=32)
    assert result.i_min == (4, 4) and result.unknown_ops == {}


def test_fractional_max_pool_has_its_kernel_and_a_fractional_stride():
    model = nn.Sequential(conv(), nn.FractionalMaxPool2d(3, output_size=16), conv(8, 8))
    # conv 3; pool 3 stride 32/16 = 2: 3 + 2 = 5, j 2; conv 3: 5 + 4 = 9
    assert rflint.analyze(model, input_res=32).i_min == (9, 9)


class Sampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv(3, 2)
        self.head = conv(3, 8)

    def forward(self, x):
        offsets = self.stem(x).permute(0, 2, 3, 1).tanh()
        return self.head(F.grid_sample(x, offsets, align_corners=False))


def test_grid_sample_with_a_computed_grid_is_unbounded():
    result = rflint.analyze(Sampler(), input_res=32)
    assert result.layer("stem").r_min == (3, 3)
    assert not result.layer("head").bounded and result.i_min == (3, 3)


class Spectral(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.head = conv(), conv(8, 8)

    def forward(self, x):
        x = self.stem(x)
        return self.head(torch.fft.irfft2(torch.fft.rfft2(x) * 2, s=x.shape[-2:]))


def test_fft_over_the_image_axes_sees_them_whole():
    result = rflint.analyze(Spectral(), input_res=32)
    assert result.layer("stem").bounded and not result.layer("head").bounded


class Scripted(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv()
        self.block = torch.jit.script(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1)))

    def forward(self, x):
        return self.block(self.stem(x))


def test_a_torchscript_submodule_is_an_unknown_op_not_a_silent_identity():
    result = rflint.analyze(Scripted(), input_res=32)
    assert result.unknown_ops == {"RecursiveScriptModule": 1}


class EcaFirst(nn.Module):
    """An ECA gate's Conv1d registered before the 2-D stem."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Conv1d(1, 1, 3, padding=1)
        self.stem = conv(3, 8, 3, 2)
        self.body = conv(8, 8)

    def forward(self, x):
        x = self.stem(x)
        y = self.gate(x.mean((2, 3)).unsqueeze(1)).squeeze(1).sigmoid()
        return self.body(x * y[:, :, None, None])


def test_spatial_axes_come_from_the_op_that_reads_the_input():
    # stem 3/2: r 3, j 2; body 3: 3 + 4 = 7. The gate is on pooled channels: unbounded.
    result = rflint.analyze(EcaFirst(), input_res=32)
    assert result.ndim == 2 and result.i_min == (7, 7)


class TokenAttention(nn.Module):
    """A ViT block: patches plus a class token, MultiheadAttention, patches back to a map."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = self.patch(x)
        b, c, h, w = x.shape
        tokens = torch.cat([self.cls.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], 1)
        tokens = tokens + self.attn(tokens, tokens, tokens)[0]
        return self.head(tokens[:, 1:].transpose(1, 2).reshape(b, c, h, w))


def test_attention_over_all_tokens_with_a_class_token_is_global():
    result = rflint.analyze(TokenAttention(), input_res=32)
    assert result.unknown_ops == {}
    assert result.layer("patch").r_min == (4, 4)
    # the residual path keeps the patches bounded: head = 4 + 2 * 4 = 12
    assert result.layer("head").r_min == (12, 12) and result.i_min == (12, 12)
    assert "attn" not in [layer.name for layer in result.layers]  # global: not a bounded layer


class EinsumWindows(nn.Module):
    """Window attention written with einsum (2x2 windows on the stride-2 map)."""

    def __init__(self):
        super().__init__()
        self.stem = conv(3, 4, 3, 2)

    def forward(self, x):
        x = self.stem(x)
        b, c, h, w = x.shape
        t = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, 4, c)
        a = torch.einsum("bnic,bnjc->bnij", t, t).softmax(-1)
        out = torch.einsum("bnij,bnjc->bnic", a, t)
        return out.view(b, h // 2, w // 2, 2, 2, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


def test_einsum_window_attention_is_a_window():
    # stem 3/2: r 3, j 2; window 2: 3 + 1 * 2 = 5
    result = rflint.analyze(EinsumWindows(), input_res=32)
    assert result.i_min == (5, 5) and result.unknown_ops == {}


def test_a_model_that_sees_everything_first_cannot_be_judged():
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(3, 8, 1))
    result = rflint.analyze(model, input_res=32)
    assert not result.judged and not result.fully_utilized()
    assert result.unbounded_by.name == "0"


def test_a_module_without_spatial_layers_is_not_judged_unbounded():
    result = rflint.analyze(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10)), input_res=8)
    assert result.judged and result.unbounded_by is None


class Rearranged(nn.Module):
    """Space-to-depth written with einops (traced through the reshapes it runs)."""

    def __init__(self):
        super().__init__()
        self.conv = conv(12)

    def forward(self, x):
        from einops import rearrange

        return self.conv(rearrange(x, "b c (h p1) (w p2) -> b (p1 p2 c) h w", p1=2, p2=2))


def test_einops_space_to_depth_is_a_2x2_patchify():
    # 2x2 window stride 2: r 2, j 2; conv 3: 2 + 2 * 2 = 6
    result = rflint.analyze(Rearranged(), input_res=32)
    assert result.i_min == (6, 6) and result.unknown_ops == {}


class TokenMixer(nn.Module):
    """MLP-Mixer: a Linear across the tokens mixes every position; across channels, none."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.channels = nn.Linear(8, 8)
        self.tokens = nn.Linear(64, 64)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)  # (B, 64 tokens, 8)
        t = self.channels(t)
        return self.tokens(t.transpose(1, 2))


def test_a_linear_across_tokens_sees_the_whole_image():
    result = rflint.analyze(TokenMixer(), input_res=32)
    assert result.layer("channels").r_min == (4, 4)  # pointwise on the patches
    assert "tokens" not in [l.name for l in result.layers]  # it sees every token: no bounded field
    assert result.i_min == (4, 4) and result.unknown_ops == {}
