"""Every rule's VALID and INVALID examples, run through the real linter (Fixit style)."""

import re

import pytest

from rflint.cli import main
from rflint.core.rules import all_rules

DIAGNOSTIC = re.compile(r"^[^:\n]+:(\d+):(\d+): (RF\d+)", re.MULTILINE)


def cases(kind):
    return [
        pytest.param(rule, case, id=f"{rule.code}-{kind}-{i}")
        for rule in all_rules()
        for i, case in enumerate(getattr(rule, kind))
    ]


def lint(tmp_path, capsys, case):
    model = tmp_path / "model.py"
    model.write_text(case.source)
    main([str(model), "--input-res", str(case.input_res), "--no-cache", "--isolated"])
    return [(int(line), int(col), code) for line, col, code in DIAGNOSTIC.findall(capsys.readouterr().out)]


@pytest.mark.parametrize("rule, case", cases("VALID"))
def test_valid(tmp_path, capsys, rule, case):
    assert [d for d in lint(tmp_path, capsys, case) if d[2] == rule.code] == []


@pytest.mark.parametrize("rule, case", cases("INVALID"))
def test_invalid(tmp_path, capsys, rule, case):
    found = [(line, col) for line, col, code in lint(tmp_path, capsys, case) if code == rule.code]
    assert found == list(case.expected)


def test_every_rule_has_examples_unless_it_reports_a_failure():
    for rule in all_rules():
        assert rule.code.startswith("RF9") or (rule.VALID and rule.INVALID), rule.code


@pytest.mark.parametrize("rule, case", [p for p in cases("INVALID") if p.values[1].fixed is not None])
def test_invalid_fixed(tmp_path, capsys, rule, case):
    """``--fix --unsafe-fixes`` turns the INVALID example into the rule's expected source."""
    model = tmp_path / "model.py"
    model.write_text(case.source)
    status = main([str(model), "--input-res", str(case.input_res), "--no-cache", "--isolated", "--fix", "--unsafe-fixes"])
    assert model.read_text() == case.fixed
    assert status == 0
