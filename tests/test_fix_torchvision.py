"""End to end on a copy of torchvision: ``rflint models --fix --unsafe-fixes`` changes no
model a maintainer did not ask to change (slow: about 15 minutes on 2 cores).

Before and after the fix, every model of ``models/`` (subfolders included) is built on the
meta device and run at 224 px, and its signature taken (kernel, stride, padding, dilation
of every layer, output shapes; ``tests/model_signatures.py``). Every model that built still
builds and runs, no model without an RF003 changes, every classifier's output keeps its
shape, and every RF003 model is either fixed or given advice with a reason.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import rflint

SIGNATURES = Path(__file__).parent / "model_signatures.py"


def signatures(site: Path) -> dict:
    run = subprocess.run([sys.executable, str(SIGNATURES), str(site), str(site / "torchvision" / "models")],
                         capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def rf003_models(diagnostics: list) -> set[str]:
    return {f"{os.path.relpath(d['file'], 'models')}::{d['model']}" for d in diagnostics if d["code"] == "RF003"}


@pytest.mark.slow
def test_fix_on_torchvision_changes_only_models_with_rf003(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(importlib.util.find_spec("torchvision").submodule_search_locations[0], site / "torchvision",
                    ignore=shutil.ignore_patterns("__pycache__"))
    copy = site / "torchvision"
    before = signatures(site)
    lint = rflint("models", "--input-res", "224", "--no-cache", "--format", "json", cwd=copy, timeout=3600)
    found = json.loads(lint.stdout)["diagnostics"]
    fix = rflint("models", "--input-res", "224", "--no-cache", "--fix", "--unsafe-fixes", "--format", "json",
                 cwd=copy, timeout=3600)
    assert "Traceback" not in fix.stderr, fix.stderr
    remaining = json.loads(fix.stdout)["diagnostics"]
    after = signatures(site)

    needed_fix = rf003_models(found)
    assert needed_fix  # MobileNetV3, MnasNet, ConvNeXt, EfficientNet, VGG19, ...
    for key, old in before.items():
        new = after[key]
        if not old["built"]:
            continue
        assert new["built"], (key, new)
        if isinstance(old["outputs"], list):
            assert isinstance(new["outputs"], list), (key, new["outputs"])  # still runs at 224 px
            if len(old["outputs"]) == 1 and len(old["outputs"][0]) == 2:  # a classifier: (1, classes)
                assert new["outputs"] == old["outputs"], key
        if key not in needed_fix:
            assert new == old, f"{key} has no RF003 but changed"
    # Every RF003 model is fixed (its RF003 is gone) or given advice with a reason.
    still = {f"{os.path.relpath(d['file'], 'models')}::{d['model']}": d for d in remaining if d["code"] == "RF003"}
    for key, diagnostic in still.items():
        assert diagnostic["fix"]["applicability"] == "display-only", key
        assert diagnostic["fix"]["message"], key
    assert needed_fix - set(still)  # some were fixed
