"""The same network as a torch model and declared by hand gives the same Result.

Declared with torchvision's module names, so the two Results can be compared layer by
layer: kinds, kernels, strides, dilations, every field, I_min and I_max, and the layers
each diagnosis picks at several resolutions. Only where a layer was written differs
(source lines for torch, declaring lines for the graph) and how it was read.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from rflint import Graph, analyze
from test_declared import declared_resnet18, declared_vgg16


def _same_result(torch_result, declared_result, resolutions):
    def fields(result):
        return ([(l.name, l.kind, l.kernel, l.stride, l.dilation, l.r_min, l.r_max, l.r_in_min, l.jump)
                 for l in result.layers], result.i_min, result.i_max, result.input_res, result.neutral_ops)

    assert fields(declared_result) == fields(torch_result)
    for res in resolutions:
        assert [l.name for l in declared_result.unproductive(res)] == [l.name for l in torch_result.unproductive(res)]
        assert [l.name for l in declared_result.underutilized(res)] == [l.name for l in torch_result.underutilized(res)]
        assert declared_result.fully_utilized(res) == torch_result.fully_utilized(res)


@pytest.mark.parametrize("factory, declared", [(torchvision.models.vgg16, declared_vgg16),
                                               (torchvision.models.resnet18, declared_resnet18)])
def test_torchvision_model_and_the_same_network_declared_by_hand(factory, declared):
    torch_result = analyze(factory, 224)
    declared_result = declared().analyze(224)
    _same_result(torch_result, declared_result, (64, 139, 140, 200, 212, 224))
    assert [l.op_type for l in declared_result.layers] == [l.op_type for l in torch_result.layers]


class UpNet(nn.Module):
    """An encoder-decoder: strided convs down, nearest upsampling and a transposed conv up,
    a skip concatenation, a dilated and a non-square conv."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.down = nn.Conv2d(8, 16, (3, 5), stride=2, padding=(1, 2))
        self.context = nn.Conv2d(16, 16, 3, padding=2, dilation=2)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2)
        self.deconv = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
        self.fuse = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x):
        skip = self.stem(x)
        y = self.pool(self.context(self.down(skip)))
        y = self.deconv(self.up(y))
        return self.fuse(nn.functional.relu(torch.cat([y, skip], dim=1)))


def declared_upnet() -> Graph:
    g = Graph("UpNet")
    x = g.input("x")
    skip = g.conv(x, 3, stride=2, name="stem", type="Conv2d")
    y = g.conv(skip, (3, 5), stride=2, name="down", type="Conv2d")
    y = g.conv(y, 3, dilation=2, name="context", type="Conv2d")
    y = g.pool(y, 2, name="pool", type="MaxPool2d")
    y = g.upsample(y, 2, name="up", type="Upsample")
    y = g.conv_transpose(y, 4, stride=2, name="deconv", type="ConvTranspose2d")
    y = g.concat(y, skip, name="cat")
    y = g.pointwise(y, name="relu")
    g.conv(y, 3, name="fuse", type="Conv2d")
    return g


def test_upsampling_and_transposed_conv_network_declared_by_hand():
    torch_result = analyze(UpNet(), 64)
    declared_result = declared_upnet().analyze(64)
    _same_result(torch_result, declared_result, (8, 16, 23, 24, 40, 64))
    assert declared_result.layer("deconv").jump == torch_result.layer("deconv").jump == (2, 2)
