"""The paper's Table 7 on ``keras.applications`` (built with ``weights=None`` on the meta
device, as the linter builds them), and its Section 5 refinement of MobileNetV1.

Five of these rows (MobileNetV1, Xception, NASNet-A mobile and large, InceptionResNetV2)
are models torchvision does not have; the others agree with the torch side's Table 7
(``tests/test_torchvision_models.py``).
"""

import json

import pytest

from keras_helpers import analyze, keras

from rflint.core.graph import analyze_graph
from rflint.frontends.keras.config_graph import graph_from_config


def nasnet(input_res: int, **arguments):
    """``keras.applications.NASNetMobile/Large`` refuse the torch backend; the NASNet
    they wrap builds with their arguments."""
    from keras.src.applications.nasnet import NASNet

    return lambda: NASNet(input_shape=(input_res, input_res, 3), filter_multiplier=2, weights=None, include_top=True,
                          **arguments)


def application(name: str, input_res: int):
    return lambda: getattr(keras.applications, name)(weights=None, input_shape=(input_res, input_res, 3))


# (model, I_res, the paper's I_min)
TABLE_7 = [
    ("MobileNetV3Large", 224, 263),
    ("MobileNetV3Small", 224, 303),
    ("EfficientNetB0", 224, 299),
    ("ConvNeXtTiny", 224, 224),
    ("ResNet50", 224, 75),  # equation 7
    ("VGG16", 224, 212),
    ("VGG19", 224, 268),
    ("DenseNet121", 224, 103),
    ("InceptionV3", 299, 239),
    ("MobileNetV2", 224, 163),
    ("Xception", 299, 135),
    ("MobileNet", 224, 315),
    pytest.param("InceptionResNetV2", 299, 143, marks=pytest.mark.slow),  # 6 s: the paper's row, beyond the list
]
NASNETS = [
    ("NASNetMobile", 224, 327, dict(penultimate_filters=1056, num_blocks=4, stem_block_filters=32, skip_reduction=False)),
    pytest.param("NASNetLarge", 331, 327, dict(penultimate_filters=4032, num_blocks=6, stem_block_filters=96,
                                               skip_reduction=True), marks=pytest.mark.slow),  # 8 s
]


@pytest.mark.parametrize("name, input_res, i_min", TABLE_7)
def test_table_7(name, input_res, i_min):
    result = analyze(application(name, input_res), input_res)
    assert result.i_min == (i_min, i_min)
    assert result.unknown_ops == {}  # every layer of keras.applications is understood


@pytest.mark.parametrize("name, input_res, i_min, arguments", NASNETS)
def test_table_7_nasnet(name, input_res, i_min, arguments):
    assert analyze(nasnet(input_res, **arguments), input_res).i_min == (i_min, i_min)


def test_section_5_mobilenet_v1_refinement():
    """Downsampling at layers 1, 3, 5, 11 instead of 1, 3, 5, 7, 13 (layer 1 the stem conv,
    layer i + 1 the i-th depthwise-separable block): I_min 315 -> 219, as in the paper."""
    with keras.device("meta"):
        model = keras.applications.MobileNet(weights=None, input_shape=(224, 224, 3))
    config = json.loads(model.to_json())
    layers = {layer["name"]: layer["config"] for layer in config["config"]["layers"]}
    strided = [name for name, layer in layers.items() if layer.get("strides") == [2, 2]]
    assert strided == ["conv1", "conv_dw_2", "conv_dw_4", "conv_dw_6", "conv_dw_12"]  # layers 1, 3, 5, 7, 13

    def i_min():
        graph = graph_from_config(config, 224)
        return analyze_graph(graph.graph, graph.input_res, name="mobilenet").i_min

    assert i_min() == (315, 315)
    layers["conv_dw_6"]["strides"] = [1, 1]  # layer 7 keeps its resolution
    layers["conv_dw_10"].update(strides=[2, 2], padding="same")  # layer 11 downsamples
    layers["conv_dw_12"]["strides"] = [1, 1]  # layer 13 does not
    assert i_min() == (219, 219)
