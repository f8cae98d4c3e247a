"""``rflint --fix --unsafe-fixes`` on a copy of torchvision: the paper's Section 5 edits,
written to disk, verified by a second run and by ``git diff``."""

import importlib.util
import re
import shutil
import subprocess

import pytest

from helpers import rflint

FILES = ["models/mobilenetv3.py", "models/mnasnet.py", "models/convnext.py"]
FIXED_MODELS = ["mobilenet_v3_large", "mobilenet_v3_small", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0",
                "mnasnet1_3", "convnext_tiny", "convnext_small", "convnext_base", "convnext_large"]


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def fixed_copy(tmp_path_factory):
    copy = tmp_path_factory.mktemp("site") / "torchvision"
    shutil.copytree(importlib.util.find_spec("torchvision").submodule_search_locations[0], copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "copy")
    run = rflint(*FILES, "--input-res", "224", "--fix", "--unsafe-fixes", "--show-fixes", "--no-cache", cwd=copy)
    return copy, run


def test_fix_removes_every_rf003_and_says_what_it_did(fixed_copy):
    copy, run = fixed_copy
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Applied fixes:" in run.stdout
    # The paper's refinements: MobileNetV3-L last downsampling (263 -> 199), -S third
    # downsampling (303 -> 175), MnasNet last downsampling (283 -> 219, one literal shared
    # by every width), ConvNeXt's patchify stem 4x4/4 -> 2x2/2 (224 -> 112, unsafe).
    assert "features.13.block.1.0: I_min 263 -> 199" in run.stdout
    assert "features.4.block.1.0: I_min 303 -> 175" in run.stdout
    assert "[mnasnet1_0, mnasnet0_5, mnasnet0_75, mnasnet1_3] (safe)" in run.stdout or "I_min 283 -> 219" in run.stdout
    assert "(unsafe) patch 4x4/4 -> 2x2/2 of features.0.0: I_min 224 -> 112" in run.stdout
    second = rflint(*FILES, "--input-res", "224", "--no-cache", cwd=copy)
    assert second.returncode == 0 and "RF003" not in second.stdout, second.stdout


def test_git_diff_shows_only_changed_digits(fixed_copy):
    copy, _ = fixed_copy
    diff = git(copy, "diff", "-U0")
    removed = [l[1:] for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    added = [l[1:] for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    # V3-L table row, V3-S table row, the MnasNet `_stack` call, ConvNeXt stem kernel and stride lines
    assert len(removed) == len(added) == 5
    for old, new in zip(removed, added):
        assert re.sub(r"\d", "#", old) == re.sub(r"\d", "#", new), (old, new)
        assert len(old) == len(new)
