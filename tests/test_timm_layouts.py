"""timm families that move positions through layouts (space-to-depth by reshape, window and
grid attention, outlook/halo attention by unfold/fold, class tokens, tokens as images):
I_min derived by hand, and where a net can be run small, r_max checked against the extent
of the non-zero input gradient of a central output position (float64 on CPU, positive
weights, no bias, max pools as average pools, activations and SE gates removed so no path
is switched off).
"""

import functools

import pytest
import timm
import torch
from torch import nn

from rflint import analyze


def _timm(name, res=224, **kwargs):
    return analyze(functools.partial(timm.create_model, name, pretrained=False, **kwargs), res, name=name)


@pytest.mark.parametrize(
    "name, res, i_min, attained_by",
    [
        # SpaceToDepth(4) by view -> permute -> view: a 4x4/4 patchify (r 4, j 4); stem 3x3:
        # 12; the first blocks of stages 2-4 take 2x2/2 average-pool shortcuts: 16, 24, 40
        # (j 32); the 3x3 conv of the second stage-4 block, the first that reads that
        # path: 40 + 2 * 32.
        ("tresnet_m", 224, 104, "body.layer4.1.conv2.conv"),
        # Patch embedding 4x4/4 (r 4), patch merging (2x2/2 space-to-depth by reshape, then a
        # Linear) three times with residual skips around every attention: r_min 8, 16 (j 16);
        # stage-3 window attention, 7 tokens of 16 px: 16 + 6 * 16. Stage-4 windows cover
        # the 7x7 map: global.
        ("swin_tiny_patch4_window7_224", 224, 112, None),
        # Patch embedding 7x7/2, 3x3, 3x3, 4x4/4: r 7, 11, 15, 21 (j 8); outlook attention:
        # its weights come from a 2x2/2 average pool (29, j 16), F.fold with kernel 3 and
        # stride 2 (a transposed 3x3 back to j 8): 29 + 2 * 8. Later stages are global.
        ("volo_d1_224", 224, 45, "fold"),
        # Tiered stem 3x3/2, 3x3, 3x3 (11, j 2), max pool 3x3/2 (15, j 4); 1x1 strided
        # shortcuts keep 15 to stage 3 (j 16), whose halo attention reads blocks of 8 plus a
        # halo of 2 each side: 12 positions: 15 + 11 * 16. Stage 4: one block, global.
        ("halonet26t", 256, 191, None),
        # Stem 3x3/2 (3), dw 3x3 (7), MBConv 3x3/2 (11, j 4), 3x3/2 (19, j 8); each MobileViT
        # block: 3x3 conv, attention across patches (every patch at one offset: global),
        # fusion 3x3 on the concatenated shortcut. Stage 4 (j 16): 3x3/2 (51) ... the last
        # block's 3x3 at j 32: 115 + 2 * 32.
        ("mobilevit_s", 256, 179, "stages.4.1.conv_kxk.conv"),
        # MobileViTv2: the same conv chain; its linear attention runs 1x1 convs on
        # (B, C, offsets, patches), which mix nothing along those dimensions (they were
        # unknown ops) and a softmax over every patch (global).
        ("mobilevitv2_050", 256, 179, None),
        # Stem 3x3/2, 3x3 (7, j 2); the MBConv shortcuts' 2x2/2 average pools: 9, 13, 21
        # (j 16); stage-3 block attention, 7x7 windows: 21 + 6 * 16. Grid attention mixes
        # every coarse position: global. Stage 4's 7x7 windows cover its map: global.
        ("maxvit_tiny_tf_224", 224, 117, None),
        # Same stem and shortcut pools as MaxViT: 9, 13, 21; stages 3 and 4 are transformers
        # (global attention) whose first block pools the shortcut 2x2/2: 21 + 16.
        ("coatnet_0_rw_224", 224, 37, "stages.3.blocks.0.shortcut.pool"),
        # Patch embedding 16x16/8 (16, j 8); global transformers whose class token holds no
        # patch's field; depthwise 3x3/2 token pooling convs: 16 + 2 * 8, then 32 + 2 * 16.
        ("pit_ti_224", 224, 64, "transformers.2.pool.conv"),
        # Stem 7x7/4 (7, j 4); per stage a 3x3 average-pool token mixer behind a residual
        # and a 3x3/2 downsampling conv: stage 4's conv 15 + 2 * 8... at j 32: 63; its pool
        # 63 + 2 * 32.
        ("poolformer_s12", 224, 127, "stages.3.blocks.0.token_mixer.pool"),
        # Stem 3x3/2 (3), strided MBConvs 3x3/2 per stage: 7, 15, 31, 63 (j 32); stage-4
        # LiteMLA (global linear attention) aggregates q, k, v with a 5x5 dw conv: 63 + 4 * 32.
        ("efficientvit_b0", 224, 191, "stages.3.blocks.1.context_module.main.aggreg.0.0"),
        # Patch embedding 4 x 3x3/2 (31, j 16); patch merging 3x3/2 at j 16 and j 32: 63, 127
        # (j 64); stage-3 cascaded group attention's 5x5 dw conv on q: 127 + 4 * 64 (over
        # 224: the model is underutilized; its 7x7 windows cover stage 3's 4x4 map).
        ("efficientvit_m0", 224, 383, "stages.2.blocks.0.mixer.m.attn.dws.0.conv"),
        # Stem 4 x 3x3/2: 3, 7, 15, 31; then global attention only.
        ("levit_128s", 224, 31, None),
        # Conv patch embedding 4 x 3x3/2 (31, j 16); cross-covariance attention is global
        # over tokens; the local patch interaction (two 3x3 dw convs) behind a residual: 31 +
        # 2 * 2 * 16.
        ("xcit_nano_12_p16_224", 224, 95, "blocks.0.local_mp.conv2"),
    ],
)
def test_family_i_min_by_hand(name, res, i_min, attained_by):
    result = _timm(name, res)
    assert result.i_min == (i_min, i_min)
    assert result.unknown_ops == ({"pad": 6} if name == "halonet26t" else {})
    if attained_by:
        assert result.layer(attained_by).r_min == (i_min, i_min)


# ----------------------------------------------------------------- constructs these families use

class GridAttention(nn.Module):
    """MaxViT's grid attention on a 16x16 map: a 4x4 grid of tokens 4 apart per window
    (the coarse pieces), the offsets inside the cells in the batch."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        b, c, h, w = x.shape
        g = 4
        grid = x.view(b, c, g, h // g, g, w // g).permute(0, 3, 5, 2, 4, 1).reshape(-1, g * g, c)
        mixed = torch.nn.functional.scaled_dot_product_attention(grid, grid, grid)
        mixed = mixed.view(b, h // g, w // g, g, g, c).permute(0, 5, 3, 1, 4, 2).reshape(b, c, h, w)
        return self.head(x + mixed)


def test_grid_attention_sees_the_whole_map():
    """The grid spans (4 - 1) * 4 + 1 = 13 of 16 positions here, the whole map at any size:
    global (it was a 13-wide window). Stem 3, head on the residual path: 3 + 2 = 5."""
    result = analyze(GridAttention(), 16)
    assert result.unknown_ops == {}
    assert result.i_min == (5, 5) and result.layer("head").r_max == (5, 5)


class ClassTokenPooling(nn.Module):
    """PiT: tokens and a class token through global attention, the class token cut off
    (x[:, :1]) and mapped by a Linear, the patches pooled by a strided conv."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.cls_fc = nn.Linear(8, 8)
        self.pool = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.attn2 = nn.MultiheadAttention(8, 2, batch_first=True)
        self.pool2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)

    def forward(self, x):
        x = self.patch(x)
        b, c, h, w = x.shape
        tokens = torch.cat([self.cls.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], 1)
        tokens = tokens + self.attn(tokens, tokens, tokens)[0]
        cls, patches = self.cls_fc(tokens[:, :1]), tokens[:, 1:]
        x = self.pool(patches.transpose(1, 2).reshape(b, c, h, w))
        h, w = x.shape[-2:]
        tokens = torch.cat([cls, x.flatten(2).transpose(1, 2)], 1)
        tokens = tokens + self.attn2(tokens, tokens, tokens)[0]
        return self.pool2(tokens[:, 1:].transpose(1, 2).reshape(b, c, h, w))


def test_a_class_token_cut_off_holds_no_patch_field():
    """Patch 4/4 (4, j 4), pool 3/2: 4 + 2 * 4 = 12 (j 8), pool2: 12 + 2 * 8 = 28. The class
    token went through the residual with the patches' field 4: it used to bring that 4
    back into the second stage at its jump 4 (pool2 4 + 2 * 4 = 12)."""
    result = analyze(ClassTokenPooling(), 64)
    assert "cls_fc" not in [layer.name for layer in result.layers if layer.bounded]
    assert result.layer("pool2").r_min == (28, 28) and result.i_min == (28, 28)


# ----------------------------------------------------------------- gradient extent

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Mish)
GATES = ("SEModule", "SqueezeExcite", "EffectiveSEModule", "EcaModule")  # global context, not a path


def _positive(model: nn.Module) -> nn.Module:
    """The net on real float64 tensors where no gradient can cancel or be switched off."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                         child.ceil_mode))
            elif isinstance(child, ACTIVATIONS) or type(child).__name__ in GATES:
                setattr(parent, child_name, nn.Identity())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if parameter_name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.copy_(torch.rand(parameter.shape, generator=generator) * 0.9 + 0.1)
    return model.double().eval()


def gradient_extent(model: nn.Module, res: int) -> tuple[int, int]:
    """Rows and columns of the input that the central output position depends on; the
    field must lie inside the image, else the border clips it."""
    x = torch.rand(1, 3, res, res, dtype=torch.float64, requires_grad=True)
    y = model(x)
    y[0, :, y.shape[-2] // 2, y.shape[-1] // 2].sum().backward()
    reached = x.grad[0].abs().sum(0) != 0
    extent = []
    for other in (1, 0):
        index = reached.any(other).nonzero().flatten()
        assert 0 < index[0] and index[-1] < res - 1, "the field reaches the border: use a larger input"
        extent.append(int(index[-1] - index[0] + 1))
    return tuple(extent)


class Features(nn.Module):
    """A timm net up to its last feature map (NCHW)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


@pytest.mark.parametrize(
    "name, kwargs, res, r_max",
    [
        # s2d 4x4/4 (4) + stem 3x3 (12); per stage a basic block 3x3, 3x3 (the first one of
        # stages 2-3 3x3 then a 3x3/2 blur pool after it, stage 4 a 3x3/2 conv): 12 + 16 =
        # 28 (j 4); 28 + 8 + 8 (blur 3x3/2) + 2 * 8 = 60 (j 8); 60 + 16 + 16 + 32 = 124
        # (j 16); 124 + 32 (3x3/2 conv at j 16) + 64 (3x3 at j 32) = 220... minus the
        # overlaps; rflint's r_max is the longest path: checked against the gradient.
        pytest.param("tresnet_m", dict(layers=[1, 1, 1, 1], width_factor=0.25), 224, 156,
                     marks=pytest.mark.slow),
        # PoolFormer (a MetaFormer whose token mixer is pooling), three stages. Stem 7x7/4 (7, j 4); one
        # block per stage: pool 3x3 (15), downsampling 3x3/2 (23,
        # j 8), pool (39); 3x3/2 (55, j 16), pool (87).
        ("MetaFormer", dict(depths=(1, 1, 1), dims=(16, 24, 32), token_mixers=timm.models.metaformer.Pooling), 160, 87),
    ],
)
def test_r_max_is_the_gradient_extent(name, kwargs, res, r_max):
    build = timm.models.metaformer.MetaFormer if name == "MetaFormer" else functools.partial(timm.create_model, name)
    model = _positive(Features(build(**kwargs)))
    assert analyze(model, res).i_max == (r_max, r_max)
    assert gradient_extent(model, res) == (r_max, r_max)


# ----------------------------------------------------------------- third-party code

@pytest.mark.parametrize(
    "pytorchcv_name, torchvision_name, i_min",
    [
        # A fixed nn.AvgPool2d(7) head on the 7x7 map is global: the 3x3 convs of layer4
        # give ResNet-18's 139 (= 11 + ... + 2 * 32), as with torchvision's adaptive pool.
        ("resnet18", "resnet18", 139),
        ("mobilenetv3_large_w1", "mobilenet_v3_large", 263),
        ("mnasnet_b1", "mnasnet1_0", 283),
    ],
)
def test_pytorchcv_fixed_pool_heads_match_torchvision(pytorchcv_name, torchvision_name, i_min):
    import torchvision.models as tvm
    from pytorchcv.model_provider import get_model

    ours = analyze(functools.partial(get_model, pytorchcv_name, pretrained=False), 224)
    theirs = analyze(functools.partial(tvm.get_model, torchvision_name, weights=None), 224)
    assert ours.i_min == theirs.i_min == (i_min, i_min)
    assert not ours.unknown_ops


def test_bninception_by_hand():
    """pytorchcv's and pretrainedmodels' BN-Inception, AvgPool2d(7) head: conv 7x7/2 (7),
    max pool 3x3/2 (11, j 4), 3x3 (19), max pool 3x3/2 (27, j 8); the reduction units'
    3x3/2 max pools (1x1 branches keep r_min elsewhere): 43 (j 16), 75 (j 32); then the
    double-3x3 branch of the next unit: 75 + 64 + 64 = 203 < 224, no RF003."""
    import pretrainedmodels
    from pytorchcv.model_provider import get_model

    pytorchcv = analyze(functools.partial(get_model, "bninception", pretrained=False), 224)
    assert pytorchcv.i_min == (203, 203)
    assert pytorchcv.layer("features.stage3.unit2.branches.branch3.conv3.conv").r_in_min == (139, 139)
    assert analyze(functools.partial(pretrainedmodels.bninception, pretrained=None), 224).i_min == (203, 203)
