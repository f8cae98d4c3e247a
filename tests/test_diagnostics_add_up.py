"""Issue 20: diagnostics that add up. A line shared by several models lists each model's
own layers and leaves out a silenced model; --verbose says one status per file; the Python
API takes the command line's resolution strings (or says what it wants) and puts RF003
where the command line does."""

import functools
import json
import re
import textwrap

import pytest

import rflint
from helpers import rflint as rflint_command

# Both models build their second and third conv on line 5; at I_res 12 that line holds
# shallow's layer 2 (r_min 15) and deep's layer 2 (r_min 17, a 5x5 stem).
SHARED_LINE = textwrap.dedent("""\
    from torch import nn


    def block(width, stride):
        return nn.Conv2d(width, width, 3, stride=stride, padding=1)


    def shallow() -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), block(8, 2), block(8, 1))


    def deep() -> nn.Sequential:{deep_comment}
        return nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=2), block(8, 2), block(8, 1))
""")


def lint_json(folder, *options) -> dict:
    run = rflint_command(".", "--input-res", "12", "--format", "json", "--no-cache", *options, cwd=folder)
    assert run.returncode == 1, run.stderr
    return json.loads(run.stdout)


def rf002(report: dict) -> list[dict]:
    return [d for d in report["diagnostics"] if d["code"] == "RF002"]


def test_a_shared_line_lists_each_models_own_layers(tmp_path):
    (tmp_path / "nets.py").write_text(SHARED_LINE.format(deep_comment=""))
    [shared] = rf002(lint_json(tmp_path))
    assert shared["line"] == 5 and shared["models"] == ["shallow", "deep"]  # in file order
    assert shared["layers"] == [{"name": "2", "r_min": [15, 15], "models": ["shallow"]},
                                {"name": "2", "r_min": [17, 17], "models": ["deep"]}]
    assert shared["message"] == "2 layers have r_min >= 12 (2 r_min=15 in shallow, 2 r_min=17 in deep)"


def test_the_same_layer_in_two_models_is_listed_once(tmp_path):
    (tmp_path / "nets.py").write_text(SHARED_LINE.format(deep_comment="").replace("5, stride=2, padding=2", "3, stride=2, padding=1"))
    [shared] = rf002(lint_json(tmp_path))
    assert shared["layers"] == [{"name": "2", "r_min": [15, 15], "models": ["shallow", "deep"]}]
    assert shared["message"] == "layer has r_min >= 12 (2 r_min=15)"


def test_a_silenced_model_is_left_out_of_a_shared_line(tmp_path):
    (tmp_path / "nets.py").write_text(SHARED_LINE.format(deep_comment="  # rflint: noqa"))
    report = lint_json(tmp_path)
    [shared] = rf002(report)
    assert shared["models"] == ["shallow"] and "deep" not in shared["message"]
    assert shared["layers"] == [{"name": "2", "r_min": [15, 15], "models": ["shallow"]}]
    assert [d["models"] for d in report["diagnostics"] if d["code"] == "RF003"] == [["shallow"]]


def test_a_model_silenced_for_one_code_keeps_the_others(tmp_path):
    (tmp_path / "nets.py").write_text(SHARED_LINE.format(deep_comment="  # rflint: noqa: RF002"))
    report = lint_json(tmp_path)
    assert [d["models"] for d in rf002(report)] == [["shallow"]]
    assert sorted(d["models"][0] for d in report["diagnostics"] if d["code"] == "RF003") == ["deep", "shallow"]


def test_verbose_says_one_status_per_file(tmp_path):
    (tmp_path / "nets.py").write_text(SHARED_LINE.format(deep_comment=""))
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "needs_args.py").write_text("from torch import nn\n\n\ndef net(width) -> nn.Module:\n    ...\n")
    (tmp_path / "broken.py").write_text("def (\n")
    for how in ("analyzed", "from the cache"):
        run = rflint_command(".", "--input-res", "12", "--verbose", cwd=tmp_path)
        statuses = re.findall(r"^rflint: info: (\w+)\.py: (analyzed|from the cache) \((.*)\)$", run.stderr, re.M)
        assert len(statuses) == 4, run.stderr  # one per file
        statuses = {name: (came_from, what) for name, came_from, what in statuses}
        assert statuses.pop("broken")[1] == "cannot import"  # whether failures are cached is the cache's business
        assert statuses == {"empty": (how, "no models found"), "needs_args": (how, "no models found"),
                            "nets": (how, "2 models")}, run.stderr
        assert "rflint: info: needs_args.py: skipped net: needs arguments to be built" in run.stderr
        assert run.stderr.count("no models found") == 2


def small_net():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1))


@pytest.mark.parametrize("text, expected", [("32", (32, 32)), ("32x32", (32, 32)), ("32x16", (32, 16)),
                                            (" 24X24 ", (24, 24)), ([32, 16], (32, 16))])
def test_the_api_takes_the_command_lines_resolutions(text, expected):
    assert rflint.analyze(small_net, input_res=text).input_res == expected


@pytest.mark.parametrize("value", ["32y32", "auto", "0", 0, -3, 2.5, True, [], [32, "x"], None])
def test_a_bad_api_resolution_is_a_value_error_naming_the_forms(value):
    with pytest.raises(ValueError, match=r'^input_res: expected a positive int, a sequence of them, "HxW" or "DxHxW", got ') as caught:
        rflint.analyze(small_net, input_res=value)
    assert type(caught.value) is ValueError  # not a CaptureError about int()


DECORATED = textwrap.dedent("""\
    import functools

    from torch import nn


    def registered(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)
        return wrapper


    @registered
    def tiny() -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                             nn.Conv2d(8, 8, 3, padding=1))


    class Holder:
        @staticmethod
        @registered
        def nested() -> nn.Sequential:
            return tiny()
""")


def test_rf003_is_on_the_def_line_in_the_api_as_in_the_cli(tmp_path, monkeypatch):
    (tmp_path / "decorated_nets.py").write_text(DECORATED)
    monkeypatch.syspath_prepend(str(tmp_path))
    import decorated_nets

    [cli] = [d for d in lint_json(tmp_path, "--select", "RF003")["diagnostics"]]
    for factory, site in ((decorated_nets.tiny, (14, 1)), (decorated_nets.Holder.nested, (22, 5))):
        [api] = [d for d in rflint.analyze(factory, input_res=12).diagnostics() if d.code == "RF003"]
        assert (api.line, api.column) == site
    [api] = [d for d in rflint.analyze(functools.partial(decorated_nets.tiny), input_res=12).diagnostics()
             if d.code == "RF003"]
    assert (cli["line"], cli["column"]) == (api.line, api.column) == (14, 1)
