"""``rflint arch.json``: graph files linted from the command line, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import rflint

GOOD = {
    "format": "rflint-graph", "version": 1, "name": "chain", "input_res": 16,
    "layers": [
        {"name": "x", "op": "input"},
        {"name": "c1", "op": "conv", "kernel": 3, "stride": 2},
        {"name": "c2", "op": "conv", "kernel": 3, "stride": 2},
        {"name": "c3", "op": "conv", "kernel": 3},
        {"name": "c4", "op": "conv", "kernel": 3},
        {"name": "c5", "op": "conv", "kernel": 1},
    ],
}  # r: 3, 7, 15, 23, 23: at 16 px c4 grows past the border (RF002), c5's input covers it (RF001)


def write(folder, name: str, document, indent=2) -> str:
    path = folder / name
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=indent))
    return name


def changed(layer: int, **fields) -> dict:
    document = json.loads(json.dumps(GOOD))
    document["layers"][layer].update(fields)
    return document


def test_layers_are_reported_at_their_name_in_the_file(tmp_path):
    write(tmp_path, "chain.json", GOOD)
    run = rflint("chain.json", "--input-res", "16", "--no-cache", cwd=tmp_path)
    assert run.returncode == 1 and run.stderr == ""
    text = (tmp_path / "chain.json").read_text().split("\n")
    assert text[3].index('"chain"') == 10 and text[28].index('"c4"') == text[33].index('"c5"') == 14
    assert run.stdout.splitlines()[:3] == [
        "chain.json:4:11: RF003 [chain] model is not fully utilized: I_min=23 >= I_res=16 (1 unproductive, 1 underutilized layers)",
        "chain.json:29:15: RF002 [chain] layer has r_min >= 16 (c4 r_min=23)",
        "chain.json:34:15: RF001 [chain] layer has input r_min >= 16 (c5 r_min=23)",
    ]


def test_a_one_line_file_gives_each_layer_its_own_column(tmp_path):
    text = json.dumps(GOOD)
    write(tmp_path, "chain.json", text)
    run = rflint("chain.json", "--input-res", "16", "--no-cache", cwd=tmp_path)
    columns = {line.split(":")[2] for line in run.stdout.splitlines() if line.startswith("chain.json:1:")}
    c4, c5 = text.index('"c4"') + 1, text.index('"c5"') + 1
    assert columns == {str(text.index('"chain"') + 1), str(c4), str(c5)}, run.stdout


@pytest.mark.parametrize("document, position, message", [
    ('{"format": "rflint-graph", "version": 1,\n "layers": [}', "2:13", "not valid JSON: Expecting value"),
    (changed(2, strides=2), "22:7", "layers[2].strides (layer 'c2'): unknown field (expected one of name, op, inputs, type, noqa, kernel, stride, dilation)"),
    (changed(1, kernel="3"), "14:17", 'layers[1].kernel (layer \'c1\'): must be a positive integer or a list of 2, got "3"'),
    (changed(3, kernel=[3, 3, 3]), "26:17", "layers[3].kernel (layer 'c3'): must be a positive integer or a list of 2, got [3, 3, 3]"),
    (changed(2, inputs=["c9"]), "23:9", "layers[2].inputs[0] (layer 'c2'): 'c9' is not a layer declared before it"),
    (changed(2, op="convolution"), "19:13", 'layers[2].op: must be one of input, conv, conv_transpose, pool, upsample, global, linear, pointwise, add, concat, multiply; got "convolution"'),
    (changed(2, name="c1"), "18:15", "layers[2].name: 'c1' is declared twice"),
    ({**GOOD, "version": 2}, "3:14", "version: this rflint reads version 1, got 2"),
    ({key: value for key, value in GOOD.items() if key != "format"}, "1:1", "format: missing"),
    ([1, 2], "1:1", "a graph file holds one JSON object, not a list"),
])
def test_a_malformed_file_gets_one_line_naming_the_field_and_the_run_goes_on(tmp_path, document, position, message):
    write(tmp_path, "bad.json", document)
    write(tmp_path, "good.json", GOOD)
    run = rflint("bad.json", "good.json", "--input-res", "16", "--no-cache", cwd=tmp_path)
    assert run.stderr == "" and run.returncode == 1
    bad = [line for line in run.stdout.splitlines() if line.startswith("bad.json")]
    assert bad == [f"bad.json:{position}: RF901 cannot read graph: {message}"]
    assert any(line.startswith("good.json:") and "RF003" in line for line in run.stdout.splitlines())


def test_a_file_that_is_not_utf8_is_one_line(tmp_path):
    (tmp_path / "latin.json").write_bytes(json.dumps(GOOD).replace("chain", "ch\xe2in").encode("latin-1"))
    run = rflint("latin.json", "--no-cache", cwd=tmp_path)
    assert run.stdout.splitlines()[0] == "latin.json:1:1: RF901 cannot read graph: not UTF-8: byte 0xe2 at offset 52"


def test_a_folder_walk_takes_graph_files_only_and_never_imports_torch(tmp_path):
    write(tmp_path, "chain.json", GOOD)
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested", "more.json", {**GOOD, "name": "more"})
    write(tmp_path, "package.json", {"name": "web", "version": "1.0.0"})
    write(tmp_path, "data.json", "[1, 2, 3")  # not even JSON: not ours, left alone
    code = ("import sys; from rflint.cli import main; status = main(['.', '--input-res', '16', '--no-cache']);"
            "assert 'rflint.frontends.declared.file' in sys.modules; print('torch imported:', 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert run.stderr == "" and run.stdout.splitlines()[-1] == "torch imported: False"
    files = {line.split(":")[0] for line in run.stdout.splitlines() if ": RF" in line}
    assert files == {"chain.json", "nested/more.json"}


def test_noqa_fields_select_ignore_and_per_file_ignores(tmp_path):
    write(tmp_path, "chain.json", changed(4, noqa="RF002"))
    codes = lambda run: [line.split(": ")[1].split()[0] for line in run.stdout.splitlines() if ": RF" in line]  # noqa: E731
    layer = rflint("chain.json", "--input-res", "16", "--no-cache", cwd=tmp_path)
    assert "(c4 r_min" not in layer.stdout and "(c5 r_min" in layer.stdout and codes(layer) == ["RF003", "RF001"]
    write(tmp_path, "chain.json", changed(5, noqa=["RF002"]))  # a code the layer does not get: no effect
    assert codes(rflint("chain.json", "--input-res", "16", "--no-cache", cwd=tmp_path)) == ["RF003", "RF002", "RF001"]
    write(tmp_path, "chain.json", {**GOOD, "noqa": ["RF002", "RF003"]})
    assert codes(rflint("chain.json", "--input-res", "16", "--no-cache", cwd=tmp_path)) == ["RF001"]
    write(tmp_path, "chain.json", {**GOOD, "noqa": True})
    assert rflint("chain.json", "--input-res", "16", "--no-cache", cwd=tmp_path).returncode == 0
    write(tmp_path, "chain.json", GOOD)
    assert codes(rflint("chain.json", "--input-res", "16", "--no-cache", "--select", "RF003", cwd=tmp_path)) == ["RF003"]
    assert codes(rflint("chain.json", "--input-res", "16", "--no-cache", "--ignore", "RF00", cwd=tmp_path)) == []
    (tmp_path / "rflint.toml").write_text('per-file-ignores = { "*.json" = ["RF002"] }\n')
    assert codes(rflint("chain.json", "--input-res", "16", "--no-cache", cwd=tmp_path)) == ["RF003", "RF001"]


def test_input_res_auto_reads_the_file_and_a_wrong_number_of_axes_is_rf903(tmp_path):
    write(tmp_path, "chain.json", GOOD)
    auto = rflint("chain.json", "--input-res", "auto", "--no-cache", "--verbose", cwd=tmp_path)
    assert "chain analyzed at 16x16 (input resolution from the model's declared resolution)" in auto.stderr
    assert "I_res=16" in auto.stdout
    wrong = rflint("chain.json", "--input-res", "8x16x16", "--no-cache", cwd=tmp_path)
    assert wrong.stdout.splitlines()[0] == (
        "chain.json:4:11: RF903 [chain] cannot analyze: input resolution (8, 16, 16) has 3 axes, the model has 2")


def test_a_warm_run_takes_graph_files_from_the_cache(tmp_path):
    write(tmp_path, "chain.json", GOOD)
    cold = rflint("chain.json", "--input-res", "16", "--verbose", cwd=tmp_path)
    warm = rflint("chain.json", "--input-res", "16", "--verbose", cwd=tmp_path)
    assert warm.stdout == cold.stdout and "chain.json: from the cache" in warm.stderr
    write(tmp_path, "chain.json", changed(2, stride=1))
    assert rflint("chain.json", "--input-res", "16", cwd=tmp_path).returncode == 0  # r: 3, 7, 11, 15, 15


def test_python_and_graph_files_in_one_run(tmp_path):
    (tmp_path / "net.py").write_text(
        "from torch import nn\n\n\ndef net() -> nn.Sequential:\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 1, 1),"
        " nn.Conv2d(8, 8, 3, 1, 1))\n"
    )
    write(tmp_path, "chain.json", GOOD)
    run = rflint(".", "--input-res", "16", "--no-cache", cwd=tmp_path)
    assert run.stderr == ""
    assert {line.split(":")[0] for line in run.stdout.splitlines() if ": RF" in line} == {"chain.json", "net.py"}
