"""The Python API as the README documents it: analyze, layers, diagnostics, fixes."""

import pickle

import pytest
import torch
import torchvision
from torch import nn

import rflint


def test_analyze_a_factory_then_diagnose_and_fix():
    result = rflint.analyze(torchvision.models.mobilenet_v3_large, input_res=224)
    assert result.i_min == (263, 263) and not result.fully_utilized()
    assert result.source.file.endswith("mobilenetv3.py")
    codes = sorted(d.code for d in result.diagnostics())
    assert codes == ["RF001", "RF002", "RF003"]
    assert result.diagnostics(input_res=320) == []
    best = result.fixes()[0]
    # The paper's refinement, as advice: torchvision's detection models read the same table row.
    assert (best.applicability, best.i_min_after) == ("display-only", (199, 199))
    assert [(e.old, e.new) for e in best.edits] == [("2", "1")]
    assert "not applied: it would also change fasterrcnn_mobilenet_v3_large_320_fpn" in best.description


def test_a_nas_loop_filters_candidates_without_memory():
    """Thousands of candidates: build nothing real, keep the fully utilized ones."""

    def candidate(strides):
        layers, channels = [], 3
        for stride in strides:
            layers += [nn.Conv2d(channels, 16, 3, stride, 1), nn.ReLU()]
            channels = 16
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    space = [(2, 2, 1, 1), (2, 2, 2, 2, 2, 1), (1, 2, 1, 2)]
    kept = [s for s in space if rflint.analyze(lambda s=s: candidate(s), input_res=32).fully_utilized()]
    assert kept == [(2, 2, 1, 1), (1, 2, 1, 2)]


def test_an_instance_is_analyzed_as_is_and_results_pickle():
    model = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3), nn.MaxPool2d(3, 2, 1), nn.Conv2d(8, 8, 3, padding=1))
    result = rflint.analyze(model, input_res=(64, 48))
    assert result.build == "given" and result.i_min == (19, 19)
    assert [layer.name for layer in result.layers] == ["0", "1", "2"]
    assert pickle.loads(pickle.dumps(result)).layers == result.layers
    assert next(model.parameters()).device == torch.device("cpu")


def test_fixes_leave_the_callers_modules_in_place():
    before = torchvision.models.mobilenetv3
    rflint.analyze(torchvision.models.mobilenet_v3_small, input_res=224).fixes()
    import sys

    assert sys.modules["torchvision.models.mobilenetv3"] is before


def test_analyze_pauses_the_collector_and_leaves_no_cyclic_garbage():
    """The collector is paused during an analysis (speed) and restored as the caller had
    it, after a failure too; the analysis's cyclic garbage (fx graphs) is already freed."""
    import gc

    from rflint.frontends.torch.analysis import CaptureError

    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU())
    gc.collect()
    assert gc.isenabled()
    collections = []
    gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)
    try:
        rflint.analyze(torchvision.models.resnet18, 224)
        assert collections == [0]  # the one young-generation pass at the end
        assert gc.isenabled() and gc.collect() == 0
        with pytest.raises(CaptureError):
            rflint.analyze(net, 2)  # smaller than the kernel
        assert gc.isenabled()
        gc.disable()
        del collections[:]
        rflint.analyze(net, 32)
        assert not gc.isenabled() and collections == []  # a caller's choice is kept
    finally:
        gc.enable()
        gc.callbacks.pop()
