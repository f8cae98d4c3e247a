"""Stage 7: reporters. They only format what the runner decided; no analysis happens here.

Every format module exposes ``render(run) -> str`` (text ending in a newline); ``render``
dispatches on the ``--output-format`` name and ``render_statistics`` serves ``--statistics``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import json
from pathlib import Path

from .. import __version__
from ..diagnostics import Diagnostic, Fix, ModelReport
from ..rules import rule_by_code


@dataclass
class RunSummary:
    """What one lint run produced, in the order the caller wants it shown."""

    diagnostics: list[Diagnostic]  # already filtered, suppressed and sorted
    models: list[ModelReport]
    cwd: str
    fix_mode: str = "none"  # "none" | "safe" | "unsafe": which fixes --fix would apply
    fixed: int = 0  # fixes applied in this run
    quiet: bool = False  # --quiet: diagnostics only, no summary
    skipped: int = 0  # candidates that are not models to lint
    version: str = __version__

    def path(self, file: str) -> str:
        """Relative to the working directory when the file is under it (like ruff), else
        absolute: a ``../`` path would hide which checkout a file came from."""
        try:
            return str(Path(file).relative_to(self.cwd))
        except ValueError:
            return file

    def applies(self, fix: Fix | None) -> bool:
        """Whether the fix counts as applicable ([*]): safe always, unsafe only when
        unsafe fixes are enabled, display-only never."""
        return fix is not None and (
            fix.applicability == "safe" or (fix.applicability == "unsafe" and self.fix_mode == "unsafe")
        )

    def hides(self, fix: Fix | None) -> bool:
        """An unsafe fix that ``--unsafe-fixes`` would make applicable."""
        return fix is not None and fix.applicability == "unsafe" and self.fix_mode != "unsafe"


def with_models(diagnostic: Diagnostic) -> str:
    """The message as users read it: which models it concerns, then what is wrong."""
    if not diagnostic.models:
        return diagnostic.message
    return f"[{', '.join(diagnostic.models)}] {diagnostic.message}"


def rule_name(code: str) -> str:
    """The rule's kebab-case name; the code itself for a code no rule registers, so a
    reporter never drops output over a registry gap."""
    rule = rule_by_code().get(code)
    return rule.name if rule else code


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


# The format modules import RunSummary and the helpers above, so they load last.
from . import concise, full, github, json_format, sarif  # noqa: E402

# Formats shown as files finish: (the diagnostics of some files, what ends the output).
STREAMED = {
    "concise": (concise.render_diagnostics, concise.render_end),
    "full": (full.render_diagnostics, full.render_end),
}
FORMATS = {
    "concise": concise.render,
    "full": full.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "github": github.render,
}
