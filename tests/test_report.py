"""Tests for rflint.report: every format's exact output on one synthetic run.

The run covers what reporters must get right: two models (one failed to build), a safe
fix with an unsafe alternative, an unsafe fix, a display-only fix without edits, a
non-square field (251x243), a multi-line span, a file outside the working directory whose
path needs GitHub escaping, a file that does not exist, and a message with ``%``, ``,``
and a newline. The SARIF log is validated against the official OASIS schema, vendored as
``tests/sarif-schema-2.1.0.json``.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import jsonschema
import pytest

from rflint import __version__
from rflint.core.diagnostics import Diagnostic, Edit, Fix, LayerRef, ModelReport
from rflint.report import FORMATS, render, render_statistics
from rflint.report.summary import RunSummary
from rflint.report.github import escape_data, escape_property
from rflint.core.layers import Layer
from rflint.core.result import Result
from rflint.core.rules import all_rules

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text("utf-8"))

SOURCE = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, kernel_size=4, stride=4)
        self.body = nn.Sequential(
            nn.Conv2d(16, 16, 3, stride=2),
            nn.Conv2d(
                16, 16, 3, stride=2),
        )
"""

NOT_FULLY_UTILIZED = "model is not fully utilized: I_min=251x243 >= I_res=224 (1 unproductive, 1 underutilized layers)"
UNPRODUCTIVE = "layer has an input with r_min >= 224 (body.1 r_min=251x243)"
UNDERUTILIZED = "layer has r_min >= 224, 100% of the image\nsee blocks.py"
BUILD_FAILED = "model could not be built: RuntimeError: boom"
STRIDE_FIX = "Change `stride=2` to `stride=1` in `body.0` (I_min 251x243 -> 187x179)"
PATCH_FIX = "Change the stem's patch size 4x4 -> 2x2"
ADVICE = "Reduce the stride set by `cfg.stride` (not a literal)"


def layer(name: str, r_min: tuple[int, int]) -> Layer:
    return Layer(name, "Conv2d", "conv", (3, 3), (Fraction(2), Fraction(2)), (1, 1), r_min, r_min, None, None)


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    project = tmp_path / "proj"
    (project / "models").mkdir(parents=True)
    (project / "models" / "net.py").write_text(SOURCE, encoding="utf-8")
    return {
        "cwd": str(project),
        "net": str(project / "models" / "net.py"),
        "broken": str(project / "models" / "broken.py"),  # never written: no code frame
        "outside": str(tmp_path / "lib:v2,old" / "blocks.py"),  # outside cwd, needs escaping
    }


def make_run(paths: dict[str, str], **options) -> RunSummary:
    net = paths["net"]
    stride_fix = Fix("safe", STRIDE_FIX, (Edit(net, 9, 41, 9, 42, "2", "1"),), ("Net", "NetWide"), (187, 179),
                     flops_before=1000, flops_after=4000, params_before=100, params_after=100)
    patch_fix = Fix("unsafe", PATCH_FIX, (Edit(net, 7, 50, 7, 51, "4", "2"), Edit(net, 7, 60, 7, 61, "4", "2")),
                    ("Net",), (123, 121))
    advice = Fix("display-only", ADVICE, (), ("NetWide",), (200, 190))
    diagnostics = [
        Diagnostic("RF003", NOT_FULLY_UTILIZED, net, 4, 1, 4, 1, ("Net", "NetWide"),
                   fix=stride_fix, alternatives=(patch_fix,)),
        Diagnostic("RF001", UNPRODUCTIVE, net, 10, 13, 11, 37, ("Net",),
                   (LayerRef("body.1", (251, 243)),), fix=patch_fix),
        Diagnostic("RF002", UNDERUTILIZED, paths["outside"], 3, 5, 3, 20, ("NetWide",),
                   (LayerRef("blocks.2", (251, 243)),), fix=advice),
        Diagnostic("RF902", BUILD_FAILED, paths["broken"], 1, 1, 1, 1, ("Broken",), severity="warning"),
    ]
    result = Result("Net", (224, 224), [layer("stem", (4, 4)), layer("body.1", (251, 243))], (251, 243), (260, 250),
                    unknown_ops={"ReLU": 2})
    models = [
        ModelReport("Net", net, 4, 1, (224, 224), result=result),
        ModelReport("Broken", paths["broken"], 1, 1, (224, 224), status="error", error="RuntimeError: boom",
                    input_res_source="config"),
    ]
    return RunSummary(diagnostics, models, paths["cwd"], **options)


def test_concise(paths):
    assert render("concise", make_run(paths)) == f"""\
models/net.py:4:1: RF003 [*] [Net, NetWide] {NOT_FULLY_UTILIZED}
models/net.py:10:13: RF001 [Net] {UNPRODUCTIVE}
{paths["outside"]}:3:5: RF002 [NetWide] {UNDERUTILIZED}
models/broken.py:1:1: RF902 [Broken] {BUILD_FAILED}

Found 4 errors.
[*] 1 fixable with the `--fix` option (1 hidden fix can be enabled with the `--unsafe-fixes` option).
1 model analyzed, 0 skipped.
"""


def test_concise_with_unsafe_fixes_marks_them_fixable(paths):
    lines = render("concise", make_run(paths, fix_mode="unsafe")).splitlines()
    assert lines[1] == f"models/net.py:10:13: RF001 [*] [Net] {UNPRODUCTIVE}"
    assert lines[-2] == "[*] 2 fixable with the `--fix` option."


@pytest.mark.parametrize(
    ("keep", "fixed", "summary"),
    [
        ([], 0, ["All checks passed!"]),
        ([], 2, ["Found 2 errors (2 fixed, 0 remaining)."]),
        ([0], 1, ["Found 2 errors (1 fixed, 1 remaining).", "[*] 1 fixable with the `--fix` option."]),
        ([1, 2], 0, ["Found 2 errors.",
                     "No fixes available (1 hidden fix can be enabled with the `--unsafe-fixes` option)."]),
        ([2], 0, ["Found 1 error."]),  # a display-only fix is advice, never fixable
    ],
)
def test_summary_lines(paths, keep, fixed, summary):
    run = make_run(paths, fixed=fixed)
    run.diagnostics = [run.diagnostics[i] for i in keep]
    output = render("concise", run).splitlines()
    tail = [""] + summary if keep else summary  # a blank line separates diagnostics and summary
    assert output[-len(tail) - 1:] == tail + ["1 model analyzed, 0 skipped."]
    assert (len(output) > len(tail) + 1) == bool(keep)


def test_summary_counts_models_analyzed_and_skipped(paths):
    """Errors are not counted as analyzed; skipped candidates are, with a pointer to --verbose."""
    assert render("concise", make_run(paths, skipped=3)).splitlines()[-1] == "1 model analyzed, 3 skipped (--verbose says why)."


def test_full_shows_code_frames_help_and_notes(paths):
    assert render("full", make_run(paths)) == f"""\
models/net.py:4:1: RF003 [*] [Net, NetWide] {NOT_FULLY_UTILIZED}
  |
4 | class Net(nn.Module):
  | ^
  |
help: {STRIDE_FIX}
note: alternative (unsafe): {PATCH_FIX}

models/net.py:10:13: RF001 [Net] {UNPRODUCTIVE}
   |
10 |             nn.Conv2d(
   |             ^^^^^^^^^^
11 |                 16, 16, 3, stride=2),
   |
help: {PATCH_FIX}

{paths["outside"]}:3:5: RF002 [NetWide] {UNDERUTILIZED}
help: {ADVICE}

models/broken.py:1:1: RF902 [Broken] {BUILD_FAILED}

Found 4 errors.
[*] 1 fixable with the `--fix` option (1 hidden fix can be enabled with the `--unsafe-fixes` option).
1 model analyzed, 0 skipped.
"""


def test_full_underlines_a_single_line_span_and_keeps_tabs(paths):
    Path(paths["net"]).write_text("x = 1\n\tself.conv = nn.Conv2d(3, 8, 3, stride=2)\n", encoding="utf-8")
    run = make_run(paths)
    run.diagnostics = [Diagnostic("RF001", "m", paths["net"], 2, 35, 2, 43, ())]
    assert render("full", run).splitlines()[1:5] == [
        "  |",
        "2 | \tself.conv = nn.Conv2d(3, 8, 3, stride=2)",
        "  | \t                                 ^^^^^^^^",
        "  |",
    ]


def test_github_annotations(paths):
    outside = paths["outside"]
    escaped = outside.replace(":", "%3A").replace(",", "%2C")
    assert render("github", make_run(paths)) == (
        "::error title=rflint (RF003),file=models/net.py,line=4,col=1,endLine=4,endColumn=1::"
        f"models/net.py:4:1: RF003 [Net, NetWide] {NOT_FULLY_UTILIZED}\n"
        "::error title=rflint (RF001),file=models/net.py,line=10,col=13,endLine=11,endColumn=37::"
        f"models/net.py:10:13: RF001 [Net] {UNPRODUCTIVE}\n"
        f"::error title=rflint (RF002),file={escaped},line=3,col=5,endLine=3,endColumn=20::"
        f"{outside}:3:5: RF002 [NetWide] layer has r_min >= 224, 100%25 of the image%0Asee blocks.py\n"
        "::warning title=rflint (RF902),file=models/broken.py,line=1,col=1,endLine=1,endColumn=1::"
        f"models/broken.py:1:1: RF902 [Broken] {BUILD_FAILED}\n"
    )


def test_github_escaping():
    assert escape_data("50%\r\nnext: a, b") == "50%25%0D%0Anext: a, b"
    assert escape_property("C:\\a,b%\n") == "C%3A\\a%2Cb%25%0A"


def test_statistics(paths):
    run = make_run(paths)
    run.diagnostics.append(run.diagnostics[1])
    assert render_statistics(run, as_json=False) == (
        "2\tRF001\t[ ] unproductive-layer\n"
        "1\tRF002\t[ ] underutilized-layer\n"
        "1\tRF003\t[*] not-fully-utilized\n"
        "1\tRF902\t[ ] build-failed\n"
    )
    assert json.loads(render_statistics(run, as_json=True)) == [
        {"code": "RF001", "name": "unproductive-layer", "count": 2, "fixable": False, "fixable_count": 0},
        {"code": "RF002", "name": "underutilized-layer", "count": 1, "fixable": False, "fixable_count": 0},
        {"code": "RF003", "name": "not-fully-utilized", "count": 1, "fixable": True, "fixable_count": 1},
        {"code": "RF902", "name": "build-failed", "count": 1, "fixable": False, "fixable_count": 0},
    ]
    run.fix_mode = "unsafe"
    assert render_statistics(run, as_json=False).splitlines()[0] == "2\tRF001\t[*] unproductive-layer"


def test_statistics_without_fixes_has_no_marker_column(paths):
    run = make_run(paths)
    run.diagnostics = run.diagnostics[2:]
    assert render_statistics(run, as_json=False) == "1\tRF002\tunderutilized-layer\n1\tRF902\tbuild-failed\n"
    run.diagnostics = []
    assert render_statistics(run, as_json=False) == ""
    assert render_statistics(run, as_json=True) == "[]\n"


MODEL_KEYS = {"name": str, "file": str, "line": int, "input_res": list, "i_min": (list, type(None)),
              "i_max": (list, type(None)), "status": str, "error": (str, type(None)), "layers": int,
              "unknown_ops": dict, "neutral_ops": dict, "judged": (bool, type(None)), "capture": (str, type(None)), "build": (str, type(None)),
              "input_res_source": str}
DIAGNOSTIC_KEYS = {"code": str, "name": str, "severity": str, "message": str, "file": str, "line": int,
                   "column": int, "end_line": int, "end_column": int, "model": str, "models": list,
                   "layers": list, "fix": (dict, type(None)), "alternatives": list}
FIX_KEYS = {"applicability": str, "message": str, "edits": list, "models": list, "i_min_after": list,
            "flops_before": (int, type(None)), "flops_after": (int, type(None)),
            "params_before": (int, type(None)), "params_after": (int, type(None))}
EDIT_KEYS = {"file": str, "line": int, "column": int, "end_line": int, "end_column": int, "old": str, "new": str}


def assert_shape(obj: dict, keys: dict) -> None:
    assert obj.keys() == keys.keys()
    for key, kind in keys.items():
        assert isinstance(obj[key], kind), (key, obj[key])


def test_json_has_the_stable_shape(paths):
    document = json.loads(render("json", make_run(paths)))
    assert document.keys() == {"version", "models", "diagnostics"}
    assert document["version"] == __version__
    for model in document["models"]:
        assert_shape(model, MODEL_KEYS)
    fixes = []
    for diagnostic in document["diagnostics"]:
        assert_shape(diagnostic, DIAGNOSTIC_KEYS)
        fixes += ([diagnostic["fix"]] if diagnostic["fix"] else []) + diagnostic["alternatives"]
    assert len(fixes) == 4
    for fix in fixes:
        assert_shape(fix, FIX_KEYS)
        for edit in fix["edits"]:
            assert_shape(edit, EDIT_KEYS)

    net, broken = document["models"]
    assert net == {"name": "Net", "file": "models/net.py", "line": 4, "input_res": [224, 224],
                   "i_min": [251, 243], "i_max": [260, 250], "status": "analyzed", "error": None, "layers": 2,
                   "unknown_ops": {"ReLU": 2}, "neutral_ops": {"ReLU": 2}, "judged": True, "capture": "fx", "build": "meta", "input_res_source": "option"}
    assert broken == {"name": "Broken", "file": "models/broken.py", "line": 1, "input_res": [224, 224],
                      "i_min": None, "i_max": None, "status": "error", "error": "RuntimeError: boom", "layers": 0,
                      "unknown_ops": {}, "neutral_ops": {}, "judged": None, "capture": None, "build": None, "input_res_source": "config"}
    rf003, rf001, rf002, rf902 = document["diagnostics"]
    assert (rf003["name"], rf003["model"]) == ("not-fully-utilized", "Net, NetWide")
    assert rf003["models"] == ["Net", "NetWide"]
    assert rf003["fix"] == {
        "applicability": "safe", "message": STRIDE_FIX,
        "edits": [{"file": "models/net.py", "line": 9, "column": 41, "end_line": 9, "end_column": 42,
                   "old": "2", "new": "1"}],
        "models": ["Net", "NetWide"], "i_min_after": [187, 179],
        "flops_before": 1000, "flops_after": 4000, "params_before": 100, "params_after": 100,
    }
    assert [fix["applicability"] for fix in rf003["alternatives"]] == ["unsafe"]
    assert rf001["layers"] == [{"name": "body.1", "r_min": [251, 243], "models": []}]
    assert (rf001["line"], rf001["column"], rf001["end_line"], rf001["end_column"]) == (10, 13, 11, 37)
    assert rf002["file"] == paths["outside"]
    assert rf002["message"] == UNDERUTILIZED
    assert (rf002["fix"]["applicability"], rf002["fix"]["edits"]) == ("display-only", [])
    assert (rf902["severity"], rf902["fix"], rf902["alternatives"]) == ("warning", None, [])


def sarif_log(paths, **options) -> dict:
    return json.loads(render("sarif", make_run(paths, **options)))


def test_sarif_validates_against_the_official_schema(paths):
    validator_class = jsonschema.validators.validator_for(SCHEMA)
    validator_class.check_schema(SCHEMA)
    log = sarif_log(paths)
    validator_class(SCHEMA).validate(log)
    jsonschema.Draft7Validator(SCHEMA).validate(log)
    log["runs"][0]["results"][0]["level"] = "fatal"
    assert not validator_class(SCHEMA).is_valid(log)  # the vendored schema really constrains


def test_sarif_content(paths):
    run = sarif_log(paths)["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("rflint", __version__)
    rules = all_rules()
    assert [rule["id"] for rule in driver["rules"]] == [rule.code for rule in rules]
    rf001 = driver["rules"][0]
    assert rf001["fullDescription"]["markdown"] == rules[0].explanation()
    assert rf001["defaultConfiguration"] == {"level": "error"}
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == Path(paths["cwd"]).as_uri() + "/"

    rf003, rf001_result, rf002, rf902 = run["results"]
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert rf003["message"]["text"] == f"[Net, NetWide] {NOT_FULLY_UTILIZED}"
    location = rf001_result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "models/net.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 10, "startColumn": 13, "endLine": 11, "endColumn": 37}
    outside = rf002["locations"][0]["physicalLocation"]["artifactLocation"]
    assert outside == {"uri": Path(paths["outside"]).as_uri()}
    assert "," not in outside["uri"] and ":" not in outside["uri"].removeprefix("file:")
    assert rf902["level"] == "warning"

    safe, unsafe = rf003["fixes"]
    assert safe["description"]["text"] == STRIDE_FIX
    assert safe["properties"] == {"applicability": "safe"}
    assert safe["artifactChanges"] == [{
        "artifactLocation": {"uri": "models/net.py", "uriBaseId": "%SRCROOT%"},
        "replacements": [{"deletedRegion": {"startLine": 9, "startColumn": 41, "endLine": 9, "endColumn": 42},
                          "insertedContent": {"text": "1"}}],
    }]
    assert len(unsafe["artifactChanges"][0]["replacements"]) == 2
    assert "fixes" not in rf002 and "fixes" not in rf902  # display-only advice has nothing to replace


def test_every_format_renders_an_empty_run(paths):
    assert set(FORMATS) == {"concise", "full", "json", "sarif", "github"}
    run = RunSummary([], [], paths["cwd"])
    assert render("concise", run) == render("full", run) == "All checks passed!\n"
    assert render("github", run) == ""
    assert json.loads(render("json", run)) == {"version": __version__, "models": [], "diagnostics": []}
    jsonschema.validators.validator_for(SCHEMA)(SCHEMA).validate(json.loads(render("sarif", run)))


def test_show_fixes_names_the_file_of_a_model_of_another_file(paths):
    """torchvision's inception_v3 and its quantized twin share a literal: the fix lists
    both names, and the one in another file comes with that file."""
    from rflint.report.show_fixes import fix_line

    net, twin = paths["net"], str(Path(paths["cwd"]) / "models" / "quantized" / "net.py")
    fix = Fix("safe", STRIDE_FIX, (Edit(net, 9, 41, 9, 42, "2", "1"),), ("Net", "Net"), (187, 179),
              model_files=(net, twin))
    diagnostic = Diagnostic("RF003", NOT_FULLY_UTILIZED, net, 4, 1, 4, 1, ("Net",), fix=fix)
    line = fix_line(RunSummary([diagnostic], [], paths["cwd"]), diagnostic)
    assert line.startswith("- models/net.py:4:1 [Net, Net (models/quantized/net.py)] (safe) ")
