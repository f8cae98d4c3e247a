"""Tests for rflint.fix.search: the verified stride / patch-size change, and the advice without one.

1. Golden tests on the model files in ``fixtures/fixes/``, one per place a stride literal can
   live (config-table row, default argument, keyword, positional through functools.partial,
   a literal shared by two models, a residual block whose add a single change would break),
   asserting the exact edits, I_min after and applicability.
2. A fix written to disk with rflint.fix.rewrite gives the model the I_min the search promised.
3. torchvision, in a subprocess on a copy of the installed package: the paper's Section 5
   refinements must be among the verified candidates, with the paper's I_min and FLOPs ratios.
"""

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import rflint
from rflint.core.graph import analyze_graph, with_literals
from rflint.frontends.torch.analysis import analyze
from rflint.core.diagnostics import Edit
from rflint.frontends.discover import find_models
from rflint.fix.search import search_file_fixes, search_fixes
from rflint.source.literals import import_file
from rflint.fix.rewrite import apply_edits, file_sha256, write_atomically

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fixes"


def analysed_models(path: Path, input_res: int, analyzed: list[Path]) -> list:
    """(entry, result) of every model in ``path``, as the worker produces them."""
    files = [str(f) for f in analyzed]
    entries, _ = find_models(import_file(path, files), str(path), path.read_text())
    return [(e, analyze(e.factory(), input_res, name=e.name, analyzed_files=files)) for e in entries]


def job(*analyzed, max_flops_ratio=float("inf"), exhaustive=False) -> SimpleNamespace:
    """What search_fixes reads of the worker's job; the fixtures' toy models are not held
    to the FLOPs budget unless a test says so."""
    return SimpleNamespace(analyzed=frozenset(map(str, analyzed)), max_flops_ratio=max_flops_ratio,
                           exhaustive_fix_search=exhaustive)


@functools.lru_cache(maxsize=None)
def fixes_of(name: str, input_res: int, *also_analyzed: str, **job_options) -> dict:
    """Every working candidate, best first (exhaustive verification), once the ranked
    search is shown to choose the same best fix; searched once per arguments for all the
    tests that read it (a fixture's fixes are plain data)."""
    path = FIXTURES / name
    analyzed = [path, *(FIXTURES / other for other in also_analyzed)]
    models = analysed_models(path, input_res, analyzed)
    ranked = search_file_fixes(models, job(*analyzed, **job_options))
    exhaustive = search_file_fixes(models, job(*analyzed, exhaustive=True, **job_options))
    assert {name: fixes[0] for name, fixes in ranked.items()} == {name: fixes[0] for name, fixes in exhaustive.items()}
    return exhaustive


def edit(name: str, line: int, column: int, old: str, new: str) -> Edit:
    return Edit(str(FIXTURES / name), line, column, line, column + len(old), old, new)


def summary(fixes) -> list:
    """What the golden tests compare: edits, I_min after, applicability and models, best first."""
    return [(fix.edits, fix.i_min_after, fix.applicability, fix.models) for fix in fixes]


# ---------------------------------------------------------------------------------------
# Where the literal lives
# ---------------------------------------------------------------------------------------


def test_config_table_row_latest_literal_below_resolution_wins():
    fixes = fixes_of("table_net.py", 48)["TableNet"]
    assert summary(fixes) == [
        ((edit("table_net.py", 10, 16, "2", "1"),), (47, 47), "safe", ("TableNet",)),
        ((edit("table_net.py", 9, 16, "2", "1"),), (39, 39), "safe", ("TableNet",)),
        ((edit("table_net.py", 8, 16, "2", "1"),), (35, 35), "safe", ("TableNet",)),
        ((edit("table_net.py", 41, 41, "2", "1"),), (33, 33), "safe", ("TableNet",)),
    ]
    best = fixes[0]
    assert best.description == "stride 2 -> 1 of features.6.block.1.0: I_min 63 -> 47"
    assert best.params_after == best.params_before
    assert best.flops_after > best.flops_before


def test_default_argument_moves_every_layer_it_governs():
    fixes = fixes_of("default_stride.py", 32)["PlainNet"]
    assert summary(fixes) == [
        ((edit("default_stride.py", 10, 59, "2", "1"),), (25, 25), "safe", ("PlainNet",)),
        ((edit("default_stride.py", 24, 48, "2", "1"),), (23, 23), "safe", ("PlainNet",)),
    ]
    assert fixes[0].description == "stride 2 -> 1 of stage1.conv, stage2.conv: I_min 41 -> 25"


def test_keyword_argument():
    fixes = fixes_of("keyword_stride.py", 24)["small_vgg"]
    assert summary(fixes) == [
        ((edit("keyword_stride.py", 16, 22, "2", "1"),), (21, 21), "safe", ("small_vgg",)),
        ((edit("keyword_stride.py", 10, 49, "2", "1"),), (17, 17), "safe", ("small_vgg",)),
    ]


def test_positional_argument_bound_by_functools_partial():
    fixes = fixes_of("partial_stride.py", 24)["partial_net"]
    assert summary(fixes) == [((edit("partial_stride.py", 19, 44, "2", "1"),), (15, 15), "safe", ("partial_net",))]
    assert fixes[0].description == "stride 2 -> 1 of 1.0, 3.0: I_min 29 -> 15"


def test_patchify_stem_changes_kernel_and_stride_and_is_unsafe():
    fixes = fixes_of("patchify_net.py", 64)["TinyConvNeXt"]
    stem = (edit("patchify_net.py", 21, 53, "4", "2"), edit("patchify_net.py", 21, 63, "4", "2"))
    downsampling = (edit("patchify_net.py", 23, 79, "2", "1"), edit("patchify_net.py", 23, 89, "2", "1"))
    assert summary(fixes) == [
        (stem, (56, 56), "unsafe", ("TinyConvNeXt",)),
        (downsampling, (28, 28), "unsafe", ("TinyConvNeXt",)),
    ]
    assert fixes[0].description == "patch 4x4/4 -> 2x2/2 of features.0: I_min 112 -> 56"
    assert fixes[0].params_before - fixes[0].params_after == 32 * 3 * (4 * 4 - 2 * 2)  # the stem's weights


# ---------------------------------------------------------------------------------------
# A literal shared by two models
# ---------------------------------------------------------------------------------------


def test_shared_literal_valid_for_both_models_lists_both():
    fixes = fixes_of("shared_table.py", 32)
    row = edit("shared_table.py", 10, 9, "2", "1")
    assert summary(fixes["convnet_s"])[0] == ((row,), (25, 25), "safe", ("convnet_s", "convnet_m"))
    assert summary(fixes["convnet_m"])[0] == ((row,), (25, 25), "safe", ("convnet_m", "convnet_s"))


def test_shared_literal_invalid_for_one_model_is_not_changed():
    fixes = fixes_of("shared_fixed_head.py", 32)
    # dense_head_net's Linear(64 * 4 * 4, 10) breaks under any stride change, so the shared
    # STAGE_STRIDES stay; compact_net gets its own stem literal.
    best, *advice = fixes["compact_net"]
    assert summary([best]) == [
        ((edit("shared_fixed_head.py", 19, 36, "2", "1"),), (21, 21), "safe", ("compact_net",)),
    ]
    # The shared rows work for compact_net alone: shown as advice, with the edit and the reason.
    assert [(a.applicability, a.models) for a in advice] == [("display-only", ("compact_net", "dense_head_net"))] * 2
    assert all("; not applied: it does not work for dense_head_net: CaptureError: " in a.description for a in advice)
    [no_fix] = fixes["dense_head_net"]
    assert (no_fix.applicability, no_fix.edits, no_fix.models) == ("display-only", (), ("dense_head_net",))
    assert no_fix.description.startswith(
        "no change of one or two stride literals builds, runs and brings I_min below I_res=32")


def test_shared_literal_would_win_without_the_other_model():
    path = FIXTURES / "shared_fixed_head.py"
    models = analysed_models(path, 32, [path])
    entry, result = next(m for m in models if m[0].name == "compact_net")
    alone = search_fixes(entry, result, job(path))
    assert alone[0].edits == (edit("shared_fixed_head.py", 5, 21, "2", "1"),)
    assert alone[0].i_min_after == (31, 31)


def test_literal_read_by_a_model_without_rf003_is_advice_naming_it():
    # VGG19's case: its pool literal is VGG11-16's too. deep_vgg (I_min 50 at 32 px) would be
    # fixed by the shared pool, but shallow_vgg (I_min 22) has no finding and must not change.
    [advice] = fixes_of("shared_pool.py", 32)["deep_vgg"]
    pool = (edit("shared_pool.py", 16, 48, "2", "1"), edit("shared_pool.py", 16, 58, "2", "1"))
    assert summary([advice]) == [(pool, (19, 19), "display-only", ("deep_vgg", "shallow_vgg"))]
    assert advice.description == ("patch 2x2/2 -> 1x1/1 of 6, 13, 20: I_min 50 -> 19; not applied: it would also"
                                  " change shallow_vgg (shared_pool.py), which has no RF003")


@pytest.mark.parametrize("model, change", [
    ("flat_head_net", "stride 2 -> 1 of 0: an output of shape (1, 10) becomes (1, 40)"),
    ("conv_head_net", "stride 2 -> 1 of 0: AvgPool2d no longer acts on the whole feature map"),
])
def test_change_that_makes_a_global_pool_local_is_rejected(model, change):
    # pytorchcv's MobileNetV3: AvgPool2d(2) is global on the 2x2 map of 14 px. The stem stride
    # change brings I_min below 14 only by making the pool local, which changes the output
    # (flattened: 10 -> 40 classes) or turns a global op into a local one (a 2x2 map).
    [advice] = fixes_of("pool_head.py", 14)[model]
    assert (advice.applicability, advice.edits) == ("display-only", ())
    assert advice.description.startswith("no change of one or two stride literals builds, runs and brings I_min"
                                         f" below I_res=14 without changing what the model returns ({change});")


def test_change_above_the_flops_budget_is_advice_with_its_figure():
    unlimited = fixes_of("default_stride.py", 32)["PlainNet"]
    budgeted = fixes_of("default_stride.py", 32, max_flops_ratio=5.0)["PlainNet"]
    # The default argument moves two layers: x6.49 FLOPs, more than any of the paper's refinements.
    assert [f.edits for f in budgeted] == [unlimited[1].edits, unlimited[0].edits]
    assert [f.applicability for f in budgeted] == ["safe", "display-only"]
    assert budgeted[1].flops_after / budgeted[1].flops_before == pytest.approx(6.49, abs=0.01)
    assert budgeted[1].description == ("stride 2 -> 1 of stage1.conv, stage2.conv: I_min 41 -> 25; not applied:"
                                       " FLOPs x6.49 > max-flops-ratio 5")
    tight = fixes_of("default_stride.py", 32, max_flops_ratio=1.5)["PlainNet"]
    assert [f.applicability for f in tight] == ["display-only"] * 2  # x3.74 and x6.49
    assert all(f.description.endswith(" > max-flops-ratio 1.5") for f in tight)


# ---------------------------------------------------------------------------------------
# Residual adds, and advice when no literal change works
# ---------------------------------------------------------------------------------------


def test_change_breaking_a_residual_add_is_rejected():
    path = FIXTURES / "residual_net.py"
    models = analysed_models(path, 32, [path])
    [(entry, result)] = models
    trials, heard = {}, []
    fixes = search_fixes(entry, result, job(path), (), trials, heard.append)
    # residual_pair.py imports residual_net.py: its model is built (once per process) to see if it
    # reads the literals (the next test shows the verdict); then one message per rebuild.
    rebuilds = [what for what in heard if " with " in what]
    trials = {key: trial for key, trial in trials.items() if key[2]}  # the unchanged model's figures are kept too
    assert len(rebuilds) == len(trials) == 3  # told before each rebuild: the worker's time limit is per rebuild
    assert rebuilds[0].startswith("ResNetD with stride 2 -> 1 of ")
    # conv1's stride=2 and the shortcut's AvgPool2d(2) must move together: alone, each breaks the add.
    assert summary(fixes) == [((edit("residual_net.py", 26, 40, "2", "1"),), (18, 18), "safe", ("ResNetD",))]
    rejected = {key[2]: trial.error for key, trial in trials.items() if not trial.valid}
    assert rejected.keys() == {frozenset({((str(path), 10, 53), 1)}), frozenset({((str(path), 14, 52), 1)})}
    assert all("broadcast" in error for error in rejected.values())


def test_pair_of_literals_when_no_single_one_works_read_by_a_model_of_another_file():
    fixes = fixes_of("residual_pair.py", 10, "residual_net.py")["tiny_resnet_d"]
    pair = (edit("residual_net.py", 10, 53, "2", "1"), edit("residual_net.py", 14, 52, "2", "1"))
    # The pair works for tiny_resnet_d, but ResNetD (residual_net.py) reads both literals
    # and has no RF003 to fix (it does not run at 10 px): advice, never applied.
    assert summary(fixes) == [(pair, (9, 9), "display-only", ("tiny_resnet_d", "ResNetD"))]
    assert fixes[0].description == (
        "stride 2 -> 1 of 2.conv1; patch 2x2/2 -> 1x1/1 of 2.shortcut.0: I_min 11 -> 9; not applied: it would"
        " also change ResNetD (residual_net.py, not analysable), which has no RF003")


def test_stride_set_in_a_file_that_is_not_analyzed_is_display_only_advice(monkeypatch):
    monkeypatch.delitem(sys.modules, "residual_net", raising=False)  # as in a fresh run: imported plain
    [advice] = fixes_of("residual_pair.py", 10)["tiny_resnet_d"]
    assert (advice.applicability, advice.edits, advice.i_min_after) == ("display-only", (), (11, 11))
    assert advice.description == (
        "no literal in an analyzed file sets the stride of '2.conv1', '2.shortcut.0' (computed, or a caller's"
        " argument): reduce it where it is set; or remove the last underutilized layers or move pooling"
        " earlier (shorter & wider)"
    )


def test_computed_stride_is_display_only_advice_naming_the_layers():
    [advice] = fixes_of("computed_stride.py", 16)["downsampling_net"]
    assert advice.applicability == "display-only" and advice.edits == ()
    assert "sets the stride of '0', '2', '4' (computed" in advice.description
    assert advice.description.endswith(
        "or remove the last unproductive layer or move pooling earlier (shorter & wider)")


def test_no_stride_change_is_enough_gives_structural_advice():
    [advice] = fixes_of("deep_tail.py", 16)["deep_tail_net"]
    assert advice.description == (
        "no change of one or two stride literals builds, runs and brings I_min below I_res=16; or remove the"
        " last 8 unproductive layers or move pooling earlier (shorter & wider)"
    )


def test_shortcut_switched_on_demotes_the_best_predicted_candidate_and_the_next_one_is_taken():
    path = FIXTURES / "shortcut_switch.py"
    [(entry, result)] = analysed_models(path, 60, [path])
    heard = []
    [best, demoted] = search_fixes(entry, result, job(path), progress=heard.append)
    # Verified in ranked order: row 3 first (predicted 65, at or above I_res: a shortcut could
    # still bring it below, so it ranks as the best possible), then row 2 (predicted 53: its
    # stride of 1 switches a shortcut on, 41), then row 1 (predicted and verified 47), the fix.
    rebuilt = [what.removeprefix("ShortcutNet with ") for what in heard if " with " in what]
    assert rebuilt == ["stride 2 -> 1 of features.3.body.0", "stride 2 -> 1 of features.2.body.0",
                       "stride 2 -> 1 of features.1.body.0"]
    assert summary([best, demoted]) == [
        ((edit("shortcut_switch.py", 12, 10, "2", "1"),), (47, 47), "safe", ("ShortcutNet",)),
        ((edit("shortcut_switch.py", 13, 10, "2", "1"),), (41, 41), "safe", ("ShortcutNet",)),
    ]
    # The captured graph with row 2's literal at 1 (no shortcut: it was not run at stride 2).
    row_2 = result.layer("features.2.body.0").stride_literals[0]
    assert analyze_graph(with_literals(result.graph, {row_2: 1}), (60, 60), name="ShortcutNet").i_min == (53, 53)


# Every fix fixture, at resolutions besides the ones the tests above use (with the files
# whose models must be analyzed with it): the ranked search must choose what verifying
# every candidate chooses (``fixes_of`` compares them).
RANKED_VS_EXHAUSTIVE = {
    "computed_stride.py": (16,), "deep_tail.py": (16,), "default_stride.py": (24, 48),
    "keyword_stride.py": (32,), "partial_stride.py": (32,), "patchify_net.py": (32, 128),
    "pool_head.py": (10, 14), "residual_net.py": (16, 32), "residual_pair.py": (10,),
    "shared_fixed_head.py": (32,), "shared_pool.py": (24,), "shared_table.py": (24, 48),
    "shortcut_switch.py": (40, 60), "table_net.py": (32, 64),
}
ANALYZED_WITH = {"residual_pair.py": ("residual_net.py",)}


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.py")))
def test_ranked_search_chooses_what_exhaustive_verification_chooses(name):
    for input_res in RANKED_VS_EXHAUSTIVE[name]:  # a new fixture must be listed
        fixes_of(name, input_res, *ANALYZED_WITH.get(name, ()))


def test_search_leaves_the_imported_modules_in_place():
    path = FIXTURES / "table_net.py"
    [(entry, result)] = analysed_models(path, 48, [path])
    before = {name: m for name, m in sys.modules.items() if getattr(m, "__file__", None) == str(path)}
    search_fixes(entry, result, job(path))
    after = {name: m for name, m in sys.modules.items() if getattr(m, "__file__", None) == str(path)}
    assert after == before


# ---------------------------------------------------------------------------------------
# The fix written to disk
# ---------------------------------------------------------------------------------------


def test_written_fix_gives_the_promised_i_min(tmp_path):
    path = tmp_path / "keyword_stride.py"
    shutil.copy(FIXTURES / "keyword_stride.py", path)
    digest = file_sha256(path)
    [(entry, result)] = analysed_models(path, 24, [path])
    best = search_fixes(entry, result, job(path))[0]
    write_atomically(path, apply_edits(path, best.edits, digest), digest)
    assert "            stride = 1,   # downsample\n" in path.read_text()
    [(_, fixed)] = analysed_models(path, 24, [path])
    assert fixed.i_min == best.i_min_after == (21, 21)


# ---------------------------------------------------------------------------------------
# torchvision: the paper's Section 5 refinements
# ---------------------------------------------------------------------------------------

TORCHVISION_SCRIPT = """
import dataclasses, glob, json, os, sys
from types import SimpleNamespace
# torchvision imports through tests/shims (conftest puts it on PYTHONPATH): its CUDA wheel's ops.
from rflint.frontends.torch.analysis import analyze
from rflint.frontends.discover import find_models
from rflint.fix.search import search_fixes
from rflint.source.literals import import_file

models_dir, file_name, searched = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
analyzed = frozenset(glob.glob(os.path.join(models_dir, "*.py")))
path = os.path.join(models_dir, file_name)
with open(path) as handle:
    entries, _ = find_models(import_file(path, analyzed), path, handle.read())
models = [(e, analyze(e.factory(), 224, name=e.name, analyzed_files=analyzed)) for e in entries]
trials, report = {}, {}
for entry, result in models:
    if entry.name in searched and not result.fully_utilized():
        siblings = [m for m in models if m[0] is not entry]
        strides = {l.name: [l.stride_literals[0].line, l.stride_literals[0].column]
                   for l in result.layers if l.stride_literals and l.stride_literals[0]}
        # Ranked first; verifying every candidate then reuses its rebuilds (the same trials).
        ranked = search_fixes(entry, result, SimpleNamespace(analyzed=analyzed), siblings, trials)
        fixes = search_fixes(entry, result, SimpleNamespace(analyzed=analyzed, exhaustive_fix_search=True),
                             siblings, trials)
        report[entry.name] = {"i_min": result.i_min, "strides": strides,
                              "fixes": [dataclasses.asdict(fix) for fix in fixes],
                              "ranked": [dataclasses.asdict(fix) for fix in ranked]}
print(json.dumps(report))
"""

# (file, models searched); the file's other models are checked as siblings.
TORCHVISION_FAMILIES = {
    "mobilenetv3": ("mobilenetv3.py", "mobilenet_v3_large,mobilenet_v3_small"),
    "mnasnet": ("mnasnet.py", "mnasnet1_0"),
    "convnext": ("convnext.py", "convnext_tiny"),
    "efficientnet": ("efficientnet.py", "efficientnet_b0"),
    "vgg": ("vgg.py", ",".join(f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn"))),
}


@pytest.fixture(scope="module")
def torchvision_models(tmp_path_factory) -> Path:
    """A copy of the installed torchvision: fixes are searched, and may be written, there."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        pytest.skip("torchvision is not installed")
    copy = tmp_path_factory.mktemp("site") / "torchvision"
    shutil.copytree(spec.submodule_search_locations[0], copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy / "models"


def start_search(models: Path, family: str) -> subprocess.Popen:
    python_path = [str(Path(rflint.__file__).parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    command = [sys.executable, "-c", TORCHVISION_SCRIPT, str(models), *TORCHVISION_FAMILIES[family]]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish_search(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr
    return json.loads(stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def torchvision_fixes(torchvision_models) -> dict:
    """The quick families, searched in parallel processes."""
    running = {family: start_search(torchvision_models, family)
               for family in ("mobilenetv3", "mnasnet", "convnext", "vgg")}
    return {family: finish_search(process) for family, process in running.items()}


def fix_changing(report: dict, layer: str) -> dict:
    """The verified fix whose edits include the stride literal of ``layer``."""
    line, column = report["strides"][layer]
    return next(f for f in report["fixes"] if any((e["line"], e["column"]) == (line, column) for e in f["edits"]))


def flops_ratio(fix: dict) -> float:
    return fix["flops_after"] / fix["flops_before"]


# torchvision's detection and segmentation models build MobileNetV3-large from its table rows.
LARGE_READERS = ["fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
                 "ssdlite320_mobilenet_v3_large"]
# Built without backbone weights, the segmentation models show they do not read the row's
# stride: their backbone is dilated, so torchvision replaces that stride by 1 (dilation 2).
DILATED = ["deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]


@pytest.mark.parametrize("family", ["mobilenetv3", "mnasnet", "convnext", "vgg"])
def test_ranked_search_chooses_what_exhaustive_verification_chooses_on_torchvision(torchvision_fixes, family):
    reports = torchvision_fixes[family]
    assert reports  # every family has a model with an RF003 (vgg: vgg19, vgg19_bn)
    for name, report in reports.items():
        assert report["ranked"][0] == report["fixes"][0], name
        assert len(report["ranked"]) <= len(report["fixes"])


def test_mobilenet_v3_large_last_downsampling_is_advice_naming_the_models_reading_it(torchvision_fixes):
    report = torchvision_fixes["mobilenetv3"]["mobilenet_v3_large"]
    best = report["fixes"][0]
    assert report["i_min"] == [263, 263]
    assert best == fix_changing(report, "features.13.block.1.0")  # the paper's own change, shown with its edit
    assert best["i_min_after"] == [199, 199] and best["applicability"] == "display-only"
    assert [(e["old"], e["new"]) for e in best["edits"]] == [("2", "1")]
    assert best["params_after"] == best["params_before"]
    # Never applied: the row is read by detection and segmentation models that have no RF003
    # (they cannot be analysed on the meta device), and applying it would change them.
    assert set(LARGE_READERS) <= set(best["models"]) and not set(DILATED) & set(best["models"])
    assert ("; not applied: it would also change fasterrcnn_mobilenet_v3_large_320_fpn,"
            " fasterrcnn_mobilenet_v3_large_fpn (faster_rcnn.py, not analysable)") in best["description"]
    # Measured: 433.2M -> 709.6M FLOPs (216.6M -> 354.8M MACs), x1.638; paper 0.24B -> 0.38B MACs, x1.58.
    assert flops_ratio(best) == pytest.approx(0.38 / 0.24, rel=0.05)
    assert all(f["applicability"] == "display-only" for f in report["fixes"])


def test_mobilenet_v3_small_third_downsampling(torchvision_fixes):
    report = torchvision_fixes["mobilenetv3"]["mobilenet_v3_small"]
    best = report["fixes"][0]
    assert report["i_min"] == [303, 303]
    assert best == fix_changing(report, "features.4.block.1.0")  # the paper's own change
    assert best["i_min_after"] == [175, 175] and best["applicability"] == "safe"
    # The last downsampling (features.9) would leave I_min at 239 >= 224: not a candidate.
    assert all(f["i_min_after"][0] < 224 for f in report["fixes"])
    line = report["strides"]["features.9.block.1.0"][0]
    assert not any(e["line"] == line for f in report["fixes"] for e in f["edits"])
    # Measured: 113.0M -> 332.3M FLOPs, x2.940; paper 0.06B -> 0.18B MACs, x3.
    assert flops_ratio(best) == pytest.approx(0.18 / 0.06, rel=0.05)


def test_mobilenet_v3_stem_literal_is_shared_by_large_and_small(torchvision_fixes):
    report = torchvision_fixes["mobilenetv3"]["mobilenet_v3_large"]
    stem = fix_changing(report, "features.0.0")
    assert stem["models"][:2] == ["mobilenet_v3_large", "mobilenet_v3_small"]
    assert set(LARGE_READERS) <= set(stem["models"])
    assert stem["i_min_after"] == [133, 133]


def test_mnasnet_1_0_last_downsampling_for_every_width(torchvision_fixes):
    report = torchvision_fixes["mnasnet"]["mnasnet1_0"]
    best = report["fixes"][0]
    assert report["i_min"] == [283, 283]
    assert best == fix_changing(report, "layers.12.0.layers.3")  # torchvision's layers.12, the paper's change
    assert best["i_min_after"] == [219, 219] and best["applicability"] == "safe"
    # The _stack calls are shared by every width: the change was verified on each.
    assert best["models"] == ["mnasnet1_0", "mnasnet0_5", "mnasnet0_75", "mnasnet1_3"]
    # Measured: 628.8M -> 1378.0M FLOPs, x2.191; paper 0.34B -> 0.73B MACs, x2.15.
    assert flops_ratio(best) == pytest.approx(0.73 / 0.34, rel=0.05)


def test_convnext_tiny_patchify_stem(torchvision_fixes):
    report = torchvision_fixes["convnext"]["convnext_tiny"]
    best = report["fixes"][0]
    assert report["i_min"] == [224, 224]
    assert best == fix_changing(report, "features.0.0")
    assert [(e["old"], e["new"]) for e in best["edits"]] == [("4", "2"), ("4", "2")]  # kernel_size=4, stride=4
    assert best["i_min_after"] == [112, 112] and best["applicability"] == "unsafe"
    assert best["params_before"] - best["params_after"] == 96 * 3 * (4 * 4 - 2 * 2)
    assert best["models"] == ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large"]
    # Measured: 8.911G -> 35.553G FLOPs, x3.990; paper 4.46B -> 17.81B MACs, x3.99.
    assert flops_ratio(best) == pytest.approx(17.81 / 4.46, rel=0.02)
    # The 2x2/2 downsampling layers share one literal; 1x1/1 would leave r_min 28, also valid.
    assert [f["i_min_after"] for f in report["fixes"]] == [[112, 112], [28, 28]]


def test_efficientnet_b0_reaches_171_not_the_papers_203(torchvision_models):
    """METHOD.md: the paper's 203 is not reachable by one stride change of torchvision's B0.

    rflint finds features.4 (the fourth stage's first block) 2 -> 1: I_min 299 -> 171, the
    closest to 224 from below; features.6 would give 235 >= 224. The table row is shared by
    B0..B7, and the change is valid for every one of them (their I_min is 299 at any depth).
    """
    report = finish_search(start_search(torchvision_models, "efficientnet"))["efficientnet_b0"]
    best = report["fixes"][0]
    assert report["ranked"][0] == best
    assert report["i_min"] == [299, 299]
    assert best == fix_changing(report, "features.4.0.block.1.0")
    assert best["i_min_after"] == [171, 171] and best["applicability"] == "safe"
    assert best["models"] == [f"efficientnet_b{i}" for i in range(8)]
    assert [f["i_min_after"][0] for f in report["fixes"]] == [171, 163, 155, 151]
    assert fix_changing(report, "features.3.0.block.1.0")["i_min_after"] == [163, 163]
    assert not any(e["line"] == report["strides"]["features.6.0.block.1.0"][0]
                   for f in report["fixes"] for e in f["edits"])
    # Measured: 771.6M -> 2347.4M FLOPs, x3.042; the paper's unidentified variant: 0.42B -> 1.78B MACs, x4.2.
    assert flops_ratio(best) == pytest.approx(3.04, rel=0.02)


@pytest.mark.parametrize("name, options", [
    ("efficientnet_b0", {}), ("mobilenet_v3_large", {}), ("inception_v3", {}), ("convnext_tiny", {}),
    ("googlenet", {}), ("fcn_resnet50", {"weights_backbone": None}),
])
def test_unchanged_model_measured_as_the_lint_built_it_equals_a_rebuild(name, options):
    """The lint's own build and capture give the unchanged model's FLOPs, weights and
    interface (outputs, global ops) exactly as a rebuild measured by a trial does: a fix's
    FLOPs ratio and interface check compare like with like (dict and tuple outputs too)."""
    import torchvision

    from rflint.frontends.torch.analysis import analyze_built
    from rflint.frontends.torch.build import build
    from rflint.fix.search import analyze_and_measure, measured_as_built

    factory = functools.partial(torchvision.models.get_model, name, weights=None, **options)
    built = build(factory)
    result = analyze_built(built, 224, name=name)
    assert measured_as_built(built.model, result) == analyze_and_measure(factory, 224, name, ())[1]
