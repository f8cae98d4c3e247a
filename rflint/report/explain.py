"""``rflint --explain CODE``: a rule's documentation in the terminal (like ``ruff rule``)."""

from __future__ import annotations

import json

from rflint.core.rules import rule_by_code
from rflint.core.rules.base import Rule

FIX_SENTENCES = {"Always": "Fix is always available.", "Sometimes": "Fix is sometimes available.",
                 "None": "Fix is not available."}


def explain(code: str, as_json: bool = False) -> str:
    """The rule's heading, fix availability and docs; KeyError names the known codes."""
    rules = rule_by_code()
    if code not in rules:
        raise KeyError(f"unknown rule code {code!r}; known codes: {', '.join(rules)}")
    rule = rules[code]
    if as_json:
        return json.dumps(
            {
                "name": rule.name,
                "code": rule.code,
                "summary": rule.summary,
                "fix_availability": rule.fix_availability,
                "explanation": rule.explanation(),
            },
            indent=2,
        ) + "\n"
    return f"# {rule.name} ({rule.code})\n\n{fix_sentence(rule)}\n\n{rule.explanation()}\n"


def fix_sentence(rule: Rule) -> str:
    return FIX_SENTENCES[rule.fix_availability]
