"""timm models: numbers checked by hand, the sweep of benchmarks/timm_sweep.py on samples,
and the input sizes ``--input-res auto`` reads from timm and torchvision."""

import csv
import functools
import subprocess
import sys

import pytest
import timm
import torchvision.models as tvm

from helpers import REPO
from rflint import analyze
from rflint.frontends.torch import analysis
from rflint.frontends.torch.capture_eager import capture_eager
from rflint.frontends.discover import ModelEntry, declared_resolution


def eager_only(model, input_res, channels, traced=None):
    """``analysis.capture`` that records while running, as for a model fx cannot trace."""
    return capture_eager(model, input_res, channels)


def _timm(name, res=224, **kwargs):
    return analyze(functools.partial(timm.create_model, name, pretrained=False, **kwargs), res, name=name)


def _torchvision(name, res=224):
    return analyze(functools.partial(tvm.get_model, name, weights=None), res, name=name)


@pytest.mark.parametrize(
    "timm_name, torchvision_name, res, i_min",
    [
        ("resnet50", "resnet50", 224, 75),  # equation 7 (the paper's table prints 96)
        ("efficientnet_b0", "efficientnet_b0", 224, 299),
        ("inception_v3", "inception_v3", 299, 239),
        ("densenet121", "densenet121", 224, 103),
        ("mobilenetv3_large_100", "mobilenet_v3_large", 224, 263),
    ],
)
def test_timm_ports_match_torchvision(timm_name, torchvision_name, res, i_min):
    ours, theirs = _timm(timm_name, res), _torchvision(torchvision_name, res)
    assert ours.i_min == theirs.i_min == (i_min, i_min)
    assert ours.i_max == theirs.i_max


def test_resnet50_d_variant_by_hand():
    """Deep stem (3 convs 3x3, the first stride 2: r 11, j 2), max-pool 3/2 (r 15, j 4);
    the least-field path then takes the 2x2 average-pool shortcuts (r 19, 27, 43 at
    jumps 8, 16, 32); the 3x3 conv of a later block in the last stage adds 2 x 32: 107."""
    result = _timm("resnet50d")
    assert result.i_min == (107, 107)
    assert result.layer("layer4.1.conv2").r_in_min == (43, 43)


def test_eca_channel_conv_is_not_spatial():
    """ECA runs a Conv1d over the channels of a globally pooled vector; fx links it to the
    feature map through ``view(x.shape[0], 1, -1)``, which once made ecaresnet50d's I_min
    299 (107 + 6 x 32). A size is not a pixel: the Conv1d is unbounded, I_min is resnet50d's."""
    result = _timm("ecaresnet50d")
    assert result.i_min == (107, 107)
    assert result.layer("layer4.1.se.conv").r_min is None


@pytest.mark.parametrize("output_stride, dilations", [(8, (1, 2, 2, 4)), (16, (1, 1, 1, 2)), (32, (1, 1, 1, 1))])
def test_dilated_resnet50(output_stride, dilations):
    """With output stride 8, layers 3 and 4 keep a jump of 8 and dilate by 2 and 4 (the first
    block of a stage keeps the previous dilation). Least fields, from r 11 through the 1x1
    shortcuts: 11 + 2*8 = 27, 11 + 4*8 = 43 twice, 11 + 8*8 = 75. Dilation makes up exactly
    for the stride it replaces, so I_min stays 75 at every output stride."""
    result = _timm("resnet50", output_stride=output_stride)
    names = ("layer3.0.conv2", "layer3.1.conv2", "layer4.0.conv2", "layer4.1.conv2")
    assert tuple(result.layer(n).dilation[0] for n in names) == dilations
    assert tuple(result.layer(n).r_min[0] for n in names) == (27, 43, 43, 75)
    assert result.i_min == (75, 75)


def test_vgg16_conv_head_is_captured_eagerly():
    """timm's VGG ends in ConvMlp, which branches on the feature map's size (fx cannot
    trace it; timm registers it as an opaque leaf) and holds fc6 as a 7x7 conv. Run eagerly
    it is a conv like any other, but on the 7x7 map at 224 px it leaves one position that
    reads all 49: a global op, as torchvision's adaptive pool and Linear are, so I_min is
    212 (the last pool) as for torchvision's VGG16, not 212 + 6 x 32 = 404."""
    result = _timm("vgg16")
    assert result.capture == "eager"
    assert result.layer("features.30").r_min == (212, 212)
    assert result.layer("pre_logits.fc1").r_min is None
    assert result.i_min == (212, 212)


@pytest.mark.parametrize("name", ["levit_128s", "pit_ti_224", "xcit_nano_12_p16_224", "halo2botnet50ts_256", "coat_lite_tiny"])
def test_eager_capture_matches_fx_on_timm(monkeypatch, name):
    """Hybrids that fx traces, full of tuple outputs (``qkv.unbind(0)``) and token slicing."""
    res = timm.models.get_pretrained_cfg(name).input_size[1:]
    by_fx = _timm(name, res)
    monkeypatch.setattr(analysis, "capture", eager_only)
    by_eager = _timm(name, res)
    assert (by_fx.capture, by_eager.capture) == ("fx", "eager")
    assert (by_eager.i_min, by_eager.i_max) == (by_fx.i_min, by_fx.i_max)
    assert [(l.name, l.r_min, l.r_max) for l in by_eager.layers] == [(l.name, l.r_min, l.r_max) for l in by_fx.layers]


# -- the sweep --------------------------------------------------------------------------

def _sweep(tmp_path, *args) -> list[dict]:
    out = tmp_path / "sweep.csv"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "timm_sweep.py"), "--out", str(out), *args],
        capture_output=True, text=True, timeout=7200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out) as f:
        return [row for row in csv.DictReader(f) if row["has_conv"] != "False"]


def _failures(rows) -> list[str]:
    return [f"{row['model']}: {row['error']}" for row in rows if row["error"]]


def test_sweep_sample_of_40(tmp_path):
    """A fixed sample (about 40 s on two processes): both captures, no failure."""
    rows = _sweep(tmp_path, "--sample", "40", "--seed", "0")
    assert _failures(rows) == []
    assert {row["capture"] for row in rows} == {"fx", "eager"}


@pytest.mark.slow
def test_sweep_every_timm_model(tmp_path):
    rows = _sweep(tmp_path)
    failures = _failures(rows)
    assert len(failures) <= 0.02 * len(rows), "\n".join(failures)


# -- --input-res auto -------------------------------------------------------------------


def _entry(target, **kwargs):
    return ModelEntry(target.__name__, "model.py", 1, 1, "factory", target, kwargs)


@pytest.mark.parametrize(
    "target, kwargs, expected",
    [
        (timm.models.resnet.resnet50, {}, (224, 224)),
        (timm.models.vision_transformer.vit_base_patch16_384, {}, (384, 384)),
        (timm.models.efficientnet.tf_efficientnet_b7, {}, (600, 600)),
        (timm.models.vision_transformer.vit_base_patch16_384, {"img_size": (320, 256)}, (320, 256)),
        (timm.create_model, {"model_name": "inception_v3"}, (299, 299)),
        (timm.models.resnet.ResNet, {}, None),  # its module's models differ in size
        (tvm.resnet50, {}, (224, 224)),
        (tvm.inception_v3, {}, (299, 299)),
        (tvm.efficientnet_b3, {}, (300, 300)),
        (tvm.video.r3d_18, {}, None),  # video crops are not image sizes
        (tvm.segmentation.fcn_resnet50, {}, (520, 520)),  # segmentation weights: their resize_size (issue 16)
    ],
)
def test_declared_resolution(target, kwargs, expected):
    assert declared_resolution(_entry(target, **kwargs)) == expected


def test_declared_resolution_of_other_code_is_none():
    def my_model():
        return tvm.resnet50()

    assert declared_resolution(_entry(my_model)) is None


def test_declared_resolution_imports_no_library(tmp_path):
    """A model file that imports neither timm nor torchvision must not get them imported."""
    code = (
        "import sys, torch\n"
        "from rflint.frontends.discover import ModelEntry, declared_resolution\n"
        "print(declared_resolution(ModelEntry('Conv2d', 'f.py', 1, 1, 'class', torch.nn.Conv2d)),"
        " 'timm' in sys.modules, 'torchvision' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.split() == ["None", "False", "False"]
