"""The same network written in Keras and in PyTorch gives the same Result: per layer the
kind, kernel, stride, dilation, r_min and r_max, and the model's I_min and I_max."""

import pytest
from torch import nn

from keras_helpers import analyze, keras

import rflint

layers = keras.layers


def same_fields(result):
    """The layers as a multiset (parallel branches may be listed in another order)."""
    return sorted((l.kind, l.kernel, l.stride, l.dilation, l.r_min, l.r_max) for l in result.layers)


def keras_vgg():
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, strides=2, padding="same", dilation_rate=1)(x)
    x = layers.Conv2D(32, 3, padding="same", dilation_rate=2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10)(x))


def torch_vgg():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.Conv2d(32, 32, 3, padding=2, dilation=2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def keras_residual():
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(16, 3, padding="same")(inputs)
    shortcut = layers.Conv2D(32, 1, strides=2)(x)
    y = layers.Conv2D(32, 3, strides=2, padding="same")(x)
    y = layers.BatchNormalization()(y)
    y = layers.Conv2D(32, 3, padding="same")(layers.ReLU()(y))
    x = layers.Add()([shortcut, y])
    return keras.Model(inputs, layers.Conv2D(8, 3, padding="same")(x))


class TorchResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.shortcut = nn.Conv2d(16, 32, 1, stride=2)
        self.body = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                  nn.Conv2d(32, 32, 3, padding=1))
        self.head = nn.Conv2d(32, 8, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.shortcut(x) + self.body(x))


def keras_decoder():
    inputs = keras.Input((None, None, 3))
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(inputs)
    x = layers.Conv2D(8, 1)(x)
    x = layers.Conv2DTranspose(8, 2, strides=2)(x)
    x = layers.UpSampling2D(2)(layers.AveragePooling2D(2)(x))
    return keras.Model(inputs, layers.Conv2D(4, 3, padding="same")(x))


def torch_decoder():
    return nn.Sequential(nn.Conv2d(3, 3, 3, stride=2, padding=1, groups=3), nn.Conv2d(3, 8, 1),
                         nn.ConvTranspose2d(8, 8, 2, stride=2), nn.AvgPool2d(2), nn.Upsample(scale_factor=2),
                         nn.Conv2d(8, 4, 3, padding=1))


def keras_convnext_block():
    """ConvNeXt's block in Keras: a 7x7 depthwise conv, then a channels-last MLP (Dense on a 4-D map)."""
    inputs = keras.Input((None, None, 8))
    x = layers.Conv2D(8, 4, strides=4)(inputs)
    y = layers.DepthwiseConv2D(7, padding="same")(x)
    y = layers.Dense(32)(layers.LayerNormalization()(y))
    y = layers.Dense(8)(layers.Activation("gelu")(y))
    return keras.Model(inputs, layers.Add()([x, y]))


class TorchConvNeXtBlock(nn.Module):
    """The same in torch: permute to channels-last, Linear, permute back."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(8, 8, 4, stride=4)
        self.dwconv = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.norm = nn.LayerNorm(8)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8)

    def forward(self, x):
        x = self.stem(x)
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + y


PAIRS = [(keras_vgg, torch_vgg, 32), (keras_residual, TorchResidual, 32), (keras_decoder, torch_decoder, 32),
         (keras_convnext_block, TorchConvNeXtBlock, 64)]


@pytest.mark.parametrize("keras_factory, torch_factory, input_res", PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_same_network_same_result(keras_factory, torch_factory, input_res):
    from_keras = analyze(keras_factory, input_res)
    from_torch = rflint.analyze(torch_factory, input_res)
    assert same_fields(from_keras) == same_fields(from_torch)
    assert (from_keras.i_min, from_keras.i_max) == (from_torch.i_min, from_torch.i_max)
    assert from_keras.unknown_ops == from_torch.unknown_ops == {}
