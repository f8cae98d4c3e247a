"""End to end: the ``rflint`` command on the installed torchvision ``models/`` folder."""

import ast
import re
from pathlib import Path

import pytest
import torchvision

from helpers import rflint

MODELS = Path(torchvision.__file__).parent / "models"
# Table 7 models at 224 px, by whether I_min >= 224 (see test_torchvision_models.py).
NOT_FULLY_UTILIZED = {
    *(f"efficientnet_b{i}" for i in range(8)),
    "mobilenet_v3_large", "mobilenet_v3_small",
    "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
    "vgg19", "convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
    "inception_v3",  # I_min 239: fully utilized at its own 299 px, not at 224
}
FULLY_UTILIZED = {
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11", "vgg13", "vgg16",
    "densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2", "googlenet",
    "squeezenet1_0", "squeezenet1_1",
}
LINE = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<code>RF\d+) \[(?P<models>[^\]]+)\]", re.M)


@pytest.fixture(scope="module")
def torchvision_run():
    run = rflint(MODELS, "--input-res", "224", "--no-cache", cwd=MODELS)
    assert run.returncode == 1, run.stderr
    return [m.groupdict() for m in LINE.finditer(run.stdout)]


def test_rf003_exactly_for_table_7_models_with_i_min_at_least_224(torchvision_run):
    flagged = {
        name
        for d in torchvision_run
        if d["code"] == "RF003" and "/" not in d["path"]  # top-level classifiers, not quantization/
        for name in d["models"].split(", ")
    }
    assert NOT_FULLY_UTILIZED <= flagged
    assert not (FULLY_UTILIZED & flagged)


def test_mobilenet_v3_large_rf002_points_at_the_block_line(torchvision_run):
    """The underutilized depthwise conv is built by ``Conv2dNormActivation(...)`` inside
    ``InvertedResidual``: that line of mobilenetv3.py is the one to change."""
    source = (MODELS / "mobilenetv3.py").read_text()
    block = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "InvertedResidual")
    calls = {
        (n.lineno, n.col_offset + 1)
        for n in ast.walk(block)
        if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Conv2dNormActivation"
    }
    rf002 = [
        (int(d["line"]), int(d["col"]))
        for d in torchvision_run
        if d["code"] == "RF002" and d["path"] == "mobilenetv3.py" and "mobilenet_v3_large" in d["models"]
    ]
    assert rf002 and set(rf002) <= calls


def test_input_res_auto_uses_the_weights_crop_size():
    """InceptionV3 is declared at 299 px (I_min 239 fits); at the default 224 it would not."""
    run = rflint("inception.py", "--input-res", "auto", "--verbose", "--no-cache", cwd=MODELS)
    assert "inception_v3 analyzed at 299x299 (input resolution from the model's declared resolution)" in run.stderr
    assert "RF003" not in run.stdout and run.returncode == 0


def test_video_models_get_the_resolution_on_all_three_axes(torchvision_run):
    """``--input-res 224`` is square, so a Conv3d model is analyzed at 224 on every axis
    (it once reached the worker as 224x224 and failed with RF902 "2 axes, the model has 3")."""
    video = [d for d in torchvision_run if d["path"].startswith("video/") and d["code"] in ("RF901", "RF902")]
    assert video == []
    # s3d's fixed AvgPool3d((2, 7, 7)) head covers its 7x7 map: a global pool, as the paper
    # counts adaptive heads (it once made I_min 35x251x251); its last convs reach 35x123x123
    assert not any(d["path"] == "video/s3d.py" and d["code"] == "RF003" for d in torchvision_run)
