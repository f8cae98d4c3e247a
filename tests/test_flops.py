"""The capture's FLOPs (``rflint/frontends/torch/flops.py``) against ``FlopCounterMode``,
which counts them op by op at the aten level: on constructions that exercise each formula
and on real models of torchvision, timm and pytorchcv."""

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from rflint.frontends.torch.analysis import analyze_built
from rflint.frontends.torch.build import build


def capture_and_counter_flops(factory, input_res=32) -> tuple[int, int]:
    """(the capture's count, FlopCounterMode's around the same capture)."""
    with FlopCounterMode(display=False) as counter:
        result = analyze_built(build(factory), input_res, name="model")
    return result.graph.flops, counter.get_total_flops()


class Attention(nn.Module):
    """Functional attention in the ways models write it."""

    def __init__(self, batch_first=True):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.mha = nn.MultiheadAttention(16, 4, batch_first=batch_first)
        self.proj = nn.Linear(16, 16)
        self.batch_first = batch_first

    def forward(self, x):
        x = self.stem(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # b, hw, c
        q = t.reshape(b, h * w, 4, 4).transpose(1, 2)  # b, heads, hw, 4
        a = F.scaled_dot_product_attention(q, q, q)
        s = torch.einsum("b h i d, b h j d -> b h i j", q, q).softmax(-1) @ q
        m = torch.matmul(t, t.transpose(1, 2)).softmax(-1).bmm(t)
        u = t if self.batch_first else t.transpose(0, 1)
        o, _ = self.mha(u, u, u)
        o = o if self.batch_first else o.transpose(0, 1)
        y = self.proj(o) + F.linear(m, self.proj.weight) + torch.addmm(self.proj.bias, t[0], self.proj.weight)
        y = y + (a + s).transpose(1, 2).reshape(b, h * w, c)
        return y.transpose(1, 2).reshape(b, c, h, w)


class Upsampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1, groups=1)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.weight = nn.Parameter(torch.empty(4, 4, 3, 3))
        self.up_weight = nn.Parameter(torch.empty(4, 4, 2, 2))

    def forward(self, x):
        x = self.up(self.depthwise(self.down(x)))
        return F.conv2d(x, self.weight, padding=1) + F.conv_transpose2d(F.avg_pool2d(x, 2), self.up_weight, stride=2)


@torch.fx.wrap
def wrapped_attention(x, weight):
    """Kept whole by fx, as torchvision's shifted_window_attention: its FLOPs are counted inside."""
    t = x.flatten(2).transpose(1, 2)
    return (t @ weight).transpose(1, 2).reshape(x.shape)


class Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.weight = nn.Parameter(torch.empty(8, 8))
        self.rnn = nn.LSTM(8, 8, batch_first=True)

    def forward(self, x):
        x = wrapped_attention(self.conv(x), self.weight)
        rows, _ = self.rnn(x.mean(2).transpose(1, 2))
        return x + rows.transpose(1, 2).unsqueeze(2)


class Untraceable(Wrapped):
    """Wrapped, with a loop over the batch that fx cannot trace: captured eagerly."""

    def forward(self, x):
        return torch.cat([super(Untraceable, self).forward(x[i:i + 1]) for i in range(x.shape[0])])


def test_an_untraceable_model_is_captured_eagerly():
    assert analyze_built(build(Untraceable), 32, name="model").capture == "eager"


@pytest.mark.parametrize("factory", [Attention, functools.partial(Attention, batch_first=False), Upsampler, Wrapped,
                                     Untraceable])
def test_each_formula_counts_what_flop_counter_mode_counts(factory):
    ours, torch_count = capture_and_counter_flops(factory)
    assert ours == torch_count > 0


TORCHVISION = ["resnet50", "efficientnet_b0", "mobilenet_v3_large", "convnext_tiny", "inception_v3", "googlenet",
               "densenet121", "regnet_y_400mf", "shufflenet_v2_x1_0", "squeezenet1_0", "vit_b_16", "swin_t",
               "swin_v2_t", "maxvit_t", "mnasnet1_0", "vgg11", "alexnet"]


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models(name):
    import torchvision

    factory = functools.partial(torchvision.models.get_model, name, weights=None)
    ours, torch_count = capture_and_counter_flops(factory, 299 if name == "inception_v3" else 224)
    assert ours == torch_count


TIMM = ["resnet50d", "efficientnet_b0", "convnext_tiny", "vit_small_patch16_224", "swin_tiny_patch4_window7_224",
        "deit_tiny_patch16_224", "coatnet_0_rw_224", "maxvit_tiny_tf_224", "poolformer_s12", "levit_128s",
        "mobilevit_s", "xcit_nano_12_p16_224", "halonet26t", "botnet26t_256", "cait_xxs24_224", "crossvit_tiny_240",
        "efficientvit_b0", "nfnet_f0", "regnety_008", "tresnet_m", "volo_d1_224", "pit_ti_224", "mixer_b16_224",
        "beit_base_patch16_224", "convit_tiny", "twins_svt_small", "pvt_v2_b0", "edgenext_xx_small"]


@pytest.mark.parametrize("name", TIMM)
def test_timm_models(name):
    timm = pytest.importorskip("timm")
    factory = functools.partial(timm.create_model, name, pretrained=False)
    size = {"halonet26t": 256, "botnet26t_256": 256, "crossvit_tiny_240": 240}.get(name, 224)
    ours, torch_count = capture_and_counter_flops(factory, size)
    assert ours == torch_count


PYTORCHCV = ["mobilenetv3_large_w1", "resnet18", "mnasnet_b1", "bninception", "squeezenet_v1_0", "shufflenetv2_w1",
             "ghostnet", "efficientnet_b0", "darknet53", "dla34", "hrnet_w18_small_v1", "sknet50"]


@pytest.mark.parametrize("name", PYTORCHCV)
def test_pytorchcv_models(name):
    model_provider = pytest.importorskip("pytorchcv.model_provider")
    ours, torch_count = capture_and_counter_flops(functools.partial(model_provider.get_model, name), 224)
    assert ours == torch_count
