"""Issue 20: the composite GitHub Action (``action.yml``). Its YAML is read as GitHub
reads it, and its lint steps run here with bash as the runner would run them (the
install step is the only one skipped: it downloads torch)."""

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from rflint.cli import parser

REPO = Path(__file__).parent.parent
ACTION = yaml.safe_load((REPO / "action.yml").read_text())
STEPS = ACTION["runs"]["steps"]
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
NET = textwrap.dedent("""\
    from torch import nn


    def net() -> nn.Sequential:
        return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=2, padding=1) for i in range(3)])
""")


def step(name: str) -> dict:
    return next(s for s in STEPS if s.get("name") == name)


def test_a_composite_action_with_declared_inputs_only():
    assert ACTION["runs"]["using"] == "composite"
    assert {"paths", "args", "torch-version", "sarif", "fail-on-findings", "python-version",
            "extra-packages"} == set(ACTION["inputs"])
    text = (REPO / "action.yml").read_text()
    used = {m.split(".", 1)[1] for m in EXPRESSION.findall(text) if m.startswith("inputs.")}
    used |= {m.group(1) for m in re.finditer(r"inputs\.([\w-]+)", " ".join(str(s.get("if", "")) for s in STEPS))}
    assert used == set(ACTION["inputs"])
    for s in STEPS:
        if "run" in s:
            assert s["shell"] == "bash"  # a composite action's run steps must name their shell
            assert not EXPRESSION.search(s["run"]), "inputs reach scripts through env, never spliced into them"


def test_the_install_step_takes_torch_from_the_cpu_index():
    install = step("Install rflint with a CPU torch")
    assert install["env"]["RFLINT_TORCH"] == "${{ inputs.torch-version }}"
    first, second = install["run"].strip().splitlines()
    assert '"torch==${RFLINT_TORCH}" --index-url https://download.pytorch.org/whl/cpu' in first
    assert '"$GITHUB_ACTION_PATH"' in second  # rflint itself from the action's checkout


def test_the_sarif_step_feeds_the_upload():
    sarif = next(s for s in STEPS if s.get("id") == "sarif")
    upload = next(s for s in STEPS if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert STEPS.index(sarif) < STEPS.index(upload) < STEPS.index(step("rflint (annotations)"))  # findings never skip it
    assert "--output-file rflint.sarif --exit-zero" in sarif["run"] and upload["with"]["sarif_file"] == "rflint.sarif"
    assert sarif["if"] == upload["if"] == "inputs.sarif == 'true'"
    assert ACTION["outputs"]["sarif-file"]["value"] == "${{ steps.sarif.outputs.file }}"


def test_every_rflint_command_line_is_one_rflint_accepts():
    for s in STEPS:
        for line in s.get("run", "").splitlines():
            if "python3 -m rflint" in line:
                words = shlex.split(line.split("python3 -m rflint", 1)[1].replace("$exit_zero", "--exit-zero"))
                words = [w for w in words if w not in ("$RFLINT_PATHS", "$RFLINT_ARGS")]
                parser().parse_args(words)  # exits 2 on an unknown option


def run_step(s: dict, project: Path, inputs: dict, bin_dir: Path) -> subprocess.CompletedProcess:
    """A run step as the runner runs it: its env with the inputs filled in, bash, $GITHUB_OUTPUT."""
    values = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()} | inputs
    env = {key: EXPRESSION.sub(lambda m: values[m[1].removeprefix("inputs.")], value)
           for key, value in s.get("env", {}).items()}
    return subprocess.run(["bash", "-e", "-c", s["run"]], cwd=project, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env, "GITHUB_OUTPUT": str(project / "github_output"),
                               "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})


@pytest.fixture
def project(tmp_path) -> tuple[Path, Path]:
    """A repository with one model that is not fully utilized at 12 px, and ``python3``
    being this test's Python (where rflint and torch are installed)."""
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "net.py").write_text(NET)
    (tmp_path / "bin").mkdir()
    python3 = tmp_path / "bin" / "python3"  # a script, not a symlink: a venv is found from the path it runs at
    python3.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    python3.chmod(0o755)
    return tmp_path / "repo", tmp_path / "bin"


def test_the_lint_steps_annotate_the_pull_request_and_write_sarif(project):
    repo, bin_dir = project
    inputs = {"args": "--input-res 12"}
    sarif = run_step(next(s for s in STEPS if s.get("id") == "sarif"), repo, inputs, bin_dir)
    assert sarif.returncode == 0, sarif.stderr
    report = json.loads((repo / "rflint.sarif").read_text())
    assert sorted(r["ruleId"] for r in report["runs"][0]["results"]) == ["RF002", "RF003"]
    assert (repo / "github_output").read_text() == "file=rflint.sarif\n"

    annotations = run_step(step("rflint (annotations)"), repo, inputs, bin_dir)
    assert annotations.returncode == 1, annotations.stderr  # fail-on-findings defaults to true
    assert re.search(r"^::error title=rflint \(RF003\),file=net\.py,line=4,col=1,endLine=4,endColumn=1::", annotations.stdout, re.M)
    assert "Proposed fixes:" in annotations.stdout

    relaxed = run_step(step("rflint (annotations)"), repo, {**inputs, "fail-on-findings": "false"}, bin_dir)
    assert relaxed.returncode == 0 and relaxed.stdout == annotations.stdout
