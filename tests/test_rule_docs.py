"""The rule docs stay in step with the registry: ``rules/*.md`` is what ``generate-docs``
writes today, every docstring follows ruff's headings, and ``--explain`` knows every code."""

from __future__ import annotations

import json

import pytest

from rflint.dev import MARKER, generate_docs, generated_docs, main, rule_doc, stale_docs
from rflint.report.explain import explain
from rflint.core.rules import all_rules

RULES = all_rules()


def test_committed_rule_docs_are_fresh():
    assert stale_docs() == [], "rule docs are stale: run `python -m rflint.dev generate-docs`"
    for path, text in generated_docs().items():
        assert path.read_text("utf-8") == text
    assert main(["generate-docs", "--check"]) == 0


def test_generate_and_check_in_a_fresh_folder(tmp_path):
    pages = tmp_path / "rules"
    assert sorted(generate_docs(pages)) == sorted(generated_docs(pages))
    assert stale_docs(pages) == []
    first = next(iter(generated_docs(pages)))
    first.write_text(first.read_text("utf-8") + "edited by hand\n", encoding="utf-8")
    orphan = pages / "RF999.md"
    orphan.write_text(f"{MARKER}\n\n# removed-rule (RF999)\n", encoding="utf-8")
    (pages / "README.md").write_text("hand-written\n", encoding="utf-8")
    assert stale_docs(pages) == [first, orphan]
    generate_docs(pages)
    assert stale_docs(pages) == []
    assert not orphan.exists() and (pages / "README.md").exists()


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_rule_page(rule):
    page = rule_doc(rule)
    assert page.startswith(f"{MARKER}\n\n# {rule.name} ({rule.code})\n\nAdded in {rule.since} · Fix is ")
    assert rule.explanation() in page
    if rule.INVALID:
        assert f"```python\n{rule.INVALID[0].source}```" in page
        assert f"`--input-res {rule.INVALID[0].input_res}`" in page
    if rule.VALID:
        assert f"```python\n{rule.VALID[0].source}```" in page


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_docstring_has_ruffs_headings(rule):
    docs = rule.explanation()
    assert "## What it does\n" in docs
    assert "## Why is this bad?\n" in docs
    assert docs.index("## What it does") < docs.index("## Why is this bad?")
    if rule.fix_availability != "None":  # ruff requires the section for every fixable rule
        assert "## Fix safety\n" in docs


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_explain(rule):
    text = explain(rule.code)
    availability = {"Always": "always", "Sometimes": "sometimes", "None": "not"}[rule.fix_availability]
    assert text == f"# {rule.name} ({rule.code})\n\nFix is {availability} available.\n\n{rule.explanation()}\n"
    assert json.loads(explain(rule.code, as_json=True)) == {
        "name": rule.name,
        "code": rule.code,
        "summary": rule.summary,
        "fix_availability": rule.fix_availability,
        "explanation": rule.explanation(),
    }


def test_explain_unknown_code():
    with pytest.raises(KeyError, match="unknown rule code 'RF999'; known codes: RF001"):
        explain("RF999")
