"""Golden outputs for the fixtures: the exact diagnostics (code, file, line, column).

Regenerate after an intended change with ``RFLINT_UPDATE_GOLDEN=1 pytest tests/test_golden.py``.
"""

import json
import os

import jsonschema

import pytest

from helpers import REPO, rflint

CASES = {
    "fixtures-64": (["fixtures/lint", "--input-res", "64"], 1),
    "functional-24": (["fixtures/lint/functional_pool.py", "--input-res", "24"], 1),
    "clean-64": (["fixtures/lint/clean.py", "--input-res", "64"], 0),
    "fixtures-64-json": (["fixtures/lint", "--input-res", "64", "--format", "json"], 1),
    "fixtures-64-full": (["fixtures/lint", "--input-res", "64", "--format", "full"], 1),
    "fixtures-64-github": (["fixtures/lint", "--input-res", "64", "--format", "github"], 1),
    "fixtures-64-sarif": (["fixtures/lint", "--input-res", "64", "--format", "sarif"], 1),
    "fixtures-64-statistics": (["fixtures/lint", "--input-res", "64", "--statistics"], 1),
    "fixtures-64-show-fixes": (["fixtures/lint", "--input-res", "64", "--show-fixes"], 1),
    "graphs-64": (["fixtures/graphs", "--input-res", "64"], 1),
    "graphs-64-full": (["fixtures/graphs", "--input-res", "64", "--format", "full"], 1),
    "graphs-64-json": (["fixtures/graphs", "--input-res", "64", "--format", "json"], 1),
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One cache for the module: the formats share one analysis (and one fix search)."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, cache_dir):
    args, status = CASES[name]
    run = rflint(*args, "--cache-dir", cache_dir)
    output = run.stdout.replace(REPO.as_uri(), "file://<repo>")  # SARIF names the checkout
    golden = REPO / "tests" / "golden" / f"{name}.txt"
    if os.environ.get("RFLINT_UPDATE_GOLDEN"):
        golden.write_text(output)
    assert run.stderr == ""
    assert run.returncode == status
    assert output == golden.read_text()


def test_sarif_on_the_fixtures_validates_against_the_official_schema(cache_dir):
    schema = json.loads((REPO / "tests" / "sarif-schema-2.1.0.json").read_text())
    log = json.loads(rflint("fixtures/lint", "--input-res", "64", "--format", "sarif", "--cache-dir", cache_dir).stdout)
    jsonschema.Draft4Validator(schema).validate(log)
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {"RF001", "RF002", "RF003"}


def test_output_file_gets_the_report_and_stdout_stays_empty(tmp_path):
    target = tmp_path / "report.json"
    run = rflint("fixtures/lint/clean.py", "--input-res", "64", "--format", "json", "-o", target, "--no-cache")
    assert run.returncode == 0 and run.stdout == ""
    assert json.loads(target.read_text())["models"][0]["name"] == "clean_net"
