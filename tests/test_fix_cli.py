"""``rflint --fix --unsafe-fixes`` on a copy of torchvision: the paper's Section 5 edits,
written to disk where no other model reads the literal, verified by a second run and by
``git diff``."""

import importlib.util
import json
import re
import shutil
import subprocess

import pytest

from helpers import rflint

FILES = ["models/mobilenetv3.py", "models/mnasnet.py", "models/convnext.py"]


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


def test_fix_applies_what_changes_no_healthy_model_and_says_what_it_did(fixed_copy):
    copy, run = fixed_copy
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Applied fixes:" in run.stdout
    # The paper's refinements: MobileNetV3-S third downsampling (303 -> 175), MnasNet last
    # downsampling (283 -> 219, one literal shared by every width), ConvNeXt's patchify stem
    # 4x4/4 -> 2x2/2 (224 -> 112, unsafe).
    assert "features.4.block.1.0: I_min 303 -> 175" in run.stdout
    assert "[mnasnet0_5, mnasnet0_75, mnasnet1_0, mnasnet1_3] (safe)" in run.stdout
    assert "(unsafe) patch 4x4/4 -> 2x2/2 of features.0.0: I_min 224 -> 112" in run.stdout
    # MobileNetV3-L's (263 -> 199) is advice: detection and segmentation models in files that
    # were not named on the command line read the same table row.
    second = rflint(*FILES, "--input-res", "224", "--no-cache", "--format", "full", cwd=copy)
    assert second.returncode == 1
    [rf003] = [line for line in second.stdout.splitlines() if ": RF003 " in line]  # advice text names RF003 too
    assert "[mobilenet_v3_large]" in rf003
    assert ("help: stride 2 -> 1 of features.13.block.1.0: I_min 263 -> 199; not applied: it would also change"
            " fasterrcnn_mobilenet_v3_large_320_fpn, fasterrcnn_mobilenet_v3_large_fpn (faster_rcnn.py, not"
            " analysable)") in second.stdout


def test_git_diff_shows_only_changed_digits(fixed_copy):
    copy, _ = fixed_copy
    diff = git(copy, "diff", "-U0")
    removed = [l[1:] for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    added = [l[1:] for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    # V3-S table row, the MnasNet `_stack` call, ConvNeXt stem kernel and stride lines
    assert len(removed) == len(added) == 4
    for old, new in zip(removed, added):
        assert re.sub(r"\d", "#", old) == re.sub(r"\d", "#", new), (old, new)
        assert len(old) == len(new)


def test_fix_search_goes_past_a_model_skipped_after_its_build(tmp_path):
    """A module found to have no spatial layer only once built (skipped, no error text)
    sits next to an unproductive model: the fix search must not trip on it (it made the
    whole file one RF902 in --format json, torchvision's raft.py among others)."""
    (tmp_path / "pair.py").write_text(
        "from torch import nn\n\n\n"
        "class Head(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(8, 2)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n\n\n"
        "def tiny() -> nn.Module:\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1),\n"
        "                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3, padding=1),\n"
        "                         nn.Conv2d(8, 8, 3, padding=1))\n"
    )
    run = rflint("pair.py", "--input-res", "32", "--no-cache", "--format", "json", "--isolated", cwd=tmp_path)
    report = json.loads(run.stdout)
    assert [d["code"] for d in report["diagnostics"]][0] == "RF003", run.stdout + run.stderr
    assert "RF902" not in run.stdout
    assert report["diagnostics"][0]["fix"] is not None
