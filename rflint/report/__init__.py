"""Reporters. They only format what the runner decided; no analysis happens here.

Every format module exposes ``render(run) -> str`` (text ending in a newline); ``render``
dispatches on the ``--output-format`` name and ``render_statistics`` serves ``--statistics``.
"""

from __future__ import annotations

import json
from collections import Counter

from rflint.report import concise, full, github, json_format, sarif
from rflint.report.summary import RunSummary, rule_name

FORMATS = {
    "concise": concise.render,
    "full": full.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "github": github.render,
}


def render(format: str, run: RunSummary) -> str:
    return FORMATS[format](run)


def render_statistics(run: RunSummary, as_json: bool = False) -> str:
    """``--statistics``: one row per code, most frequent first (ruff's layout: the fix
    marker column only appears when some code is fixable)."""
    counts = Counter(d.code for d in run.diagnostics)
    fixable = Counter(d.code for d in run.diagnostics if run.applies(d.fix))
    rows = [
        {"code": code, "name": rule_name(code), "count": count, "fixable": fixable[code] > 0,
         "fixable_count": fixable[code]}
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    if as_json:
        return json.dumps(rows, indent=2) + "\n"
    count_width = max((len(str(row["count"])) for row in rows), default=0)
    code_width = max((len(row["code"]) for row in rows), default=0)
    any_fixable = any(row["fixable"] for row in rows)
    lines = []
    for row in rows:
        marker = ("[*] " if row["fixable"] else "[ ] ") if any_fixable else ""
        lines.append(f"{row['count']:>{count_width}}\t{row['code']:<{code_width}}\t{marker}{row['name']}")
    return "".join(line + "\n" for line in lines)
