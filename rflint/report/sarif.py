"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Files under the working directory get a relative ``uri`` with ``uriBaseId: "%SRCROOT%"``,
and ``originalUriBaseIds`` maps ``%SRCROOT%`` to the working directory as a ``file://``
URI: GitHub resolves relative URIs against the repository root (rflint runs from there in
CI) and other viewers can still resolve them. Files elsewhere get an absolute ``file://``
URI. Columns count Unicode characters, so the run sets ``columnKind: unicodeCodePoints``
(SARIF's default would be UTF-16 code units).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from rflint.core.diagnostics import Diagnostic, Edit, Fix
from rflint.core.rules import all_rules
from rflint.core.rules.base import Rule
from rflint.report.summary import RunSummary, with_models

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/rflint/"
SRCROOT = "%SRCROOT%"
LEVELS = {"error": "error", "warning": "warning"}  # any other severity is a note


def render(run: RunSummary) -> str:
    rules = all_rules()
    rule_index = {rule.code: index for index, rule in enumerate(rules)}
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "rflint",
                        "version": run.version,
                        "informationUri": INFORMATION_URI,
                        "rules": [rule_descriptor(rule) for rule in rules],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": directory_uri(run.cwd)}},
                "columnKind": "unicodeCodePoints",
                "results": [result(run, d, rule_index) for d in run.diagnostics],
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def rule_descriptor(rule: Rule) -> dict:
    docs = rule.explanation()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": docs, "markdown": docs},
        "help": {"text": docs, "markdown": docs},
        "defaultConfiguration": {"level": level(rule.severity)},
        "properties": {
            "id": rule.code,
            "name": rule.name,
            "kind": "rflint",
            "fix_availability": rule.fix_availability,
            "since": rule.since,
        },
    }


def result(run: RunSummary, diagnostic: Diagnostic, rule_index: dict[str, int]) -> dict:
    sarif_result = {
        "ruleId": diagnostic.code,
        "level": level(diagnostic.severity),
        "message": {"text": with_models(diagnostic)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact_location(run, diagnostic.file),
                    "region": region(diagnostic),
                }
            }
        ],
        "properties": {
            "models": list(diagnostic.models),
            "layers": [{"name": layer.name, "r_min": list(layer.r_min), "models": list(layer.models)}
                   for layer in diagnostic.layers],
        },
    }
    if diagnostic.code in rule_index:  # a code no rule registers has no index to point at
        sarif_result["ruleIndex"] = rule_index[diagnostic.code]
    fixes = [sarif_fix(run, fix) for fix in (diagnostic.fix, *diagnostic.alternatives) if fix and fix.edits]
    if fixes:
        sarif_result["fixes"] = fixes
    return sarif_result


def sarif_fix(run: RunSummary, fix: Fix) -> dict:
    """One artifactChange per edited file; SARIF has no applicability, so it is a property."""
    by_file: dict[str, list[Edit]] = {}
    for edit in fix.edits:
        by_file.setdefault(edit.file, []).append(edit)
    return {
        "description": {"text": fix.description},
        "artifactChanges": [
            {
                "artifactLocation": artifact_location(run, file),
                "replacements": [
                    {"deletedRegion": region(edit), "insertedContent": {"text": edit.new}} for edit in edits
                ],
            }
            for file, edits in by_file.items()
        ],
        "properties": {"applicability": fix.applicability},
    }


def region(span: Diagnostic | Edit) -> dict:
    return {
        "startLine": span.line,
        "startColumn": span.column,
        "endLine": span.end_line,
        "endColumn": span.end_column,
    }


def artifact_location(run: RunSummary, file: str) -> dict:
    shown = run.path(file)
    if Path(shown).is_absolute():
        return {"uri": Path(shown).as_uri()}
    return {"uri": quote(Path(shown).as_posix()), "uriBaseId": SRCROOT}


def directory_uri(directory: str) -> str:
    """SARIF requires a base URI to end with a slash."""
    uri = Path(directory).absolute().as_uri()
    return uri if uri.endswith("/") else uri + "/"


def level(severity: str) -> str:
    return LEVELS.get(severity, "note")
