"""Real torchvision models against the paper's Table 7 (see ../shared/METHOD.md)."""

import functools

import pytest
import torchvision.models as tvm

from rflint import analyze

# model -> (I_res, I_min) from Table 7; where rflint differs from the printed table the
# reason is given next to the value.
TABLE_7 = {
    "resnet18": (224, 139),
    "resnet34": (224, 139),
    # The table prints 96 for ResNet50/101/152: the paper's tool takes the max of r_min and
    # "kernel size x cumulative stride" (3 x 32 = 96 at the last 3x3 conv). Equation 7 of
    # the paper, the max of r_min over layers, gives 75, and that is what rflint reports.
    "resnet50": (224, 75),
    "resnet101": (224, 75),
    "resnet152": (224, 75),
    "vgg11": (224, 150),
    "vgg13": (224, 156),
    "vgg16": (224, 212),
    "vgg19": (224, 268),
    "densenet121": (224, 103),
    "densenet161": (224, 103),
    "densenet169": (224, 103),
    "densenet201": (224, 103),
    "efficientnet_b0": (224, 299),
    "efficientnet_b1": (240, 299),
    "efficientnet_b2": (260, 299),
    "efficientnet_b3": (300, 299),
    "efficientnet_b4": (380, 299),
    "efficientnet_b5": (456, 299),
    "efficientnet_b6": (528, 299),
    "efficientnet_b7": (600, 299),
    "mobilenet_v2": (224, 163),
    "mobilenet_v3_large": (224, 263),
    "mobilenet_v3_small": (224, 303),
    "mnasnet0_5": (224, 283),
    "mnasnet0_75": (224, 283),
    "mnasnet1_0": (224, 283),
    "mnasnet1_3": (224, 283),
    "googlenet": (224, 123),
    "inception_v3": (299, 239),
    "squeezenet1_0": (224, 67),
    "squeezenet1_1": (227, 63),
    "convnext_tiny": (224, 224),
    "convnext_small": (224, 224),
    "convnext_base": (224, 224),
    "convnext_large": (224, 224),
}


@functools.lru_cache(maxsize=None)
def _analyze(name, res):
    return analyze(functools.partial(tvm.get_model, name, weights=None), res, name=name)


@pytest.mark.parametrize("name", sorted(TABLE_7))
def test_i_min_matches_table_7(name):
    res, expected = TABLE_7[name]
    result = _analyze(name, res)
    assert result.i_min == (expected, expected)
    assert result.fully_utilized() == (expected < res)


def test_vgg16_last_pool_sets_i_min_last_conv_is_196():
    result = _analyze("vgg16", 224)
    convs = [layer for layer in result.layers if layer.kind == "conv"]
    pools = [layer for layer in result.layers if layer.kind == "pool"]
    assert convs[-1].r_min == (196, 196)
    assert pools[-1].r_min == (212, 212)


@pytest.mark.parametrize("name", tvm.list_models(module=tvm))
def test_every_classifier_analyzes_on_meta(name):
    result = _analyze(name, 299 if name == "inception_v3" else 224)
    assert result.build == "meta"
    assert result.layers and all(m > 0 for m in result.i_min)
    assert result.i_max >= result.i_min


@pytest.mark.parametrize(
    "name, patch",
    [("vit_b_16", 16), ("vit_b_32", 32), ("vit_l_16", 16), ("vit_h_14", 14), ("swin_t", 4), ("swin_v2_t", 4)],
)
def test_transformers_min_field_is_the_patch(name, patch):
    """A patch embedding is a conv; attention mixes every position (unbounded), and the
    residual path around it keeps the patch's field as the minimum."""
    result = _analyze(name, 224)
    assert result.i_min == (patch, patch)
    assert result.layers[0].kernel == (patch, patch) and result.layers[0].stride == (patch, patch)


def test_regnets_need_parameters_only_meta():
    """A plain ``torch.device("meta")`` build fails on RegNet's ``.item()``; rflint's does not."""
    import torch

    with pytest.raises(Exception), torch.device("meta"):
        tvm.regnet_y_400mf()
    assert _analyze("regnet_y_400mf", 224).build == "meta"
