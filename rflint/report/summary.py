"""What a lint run produced, as every reporter reads it: the diagnostics in display order,
the models, and how fixes apply; plus the helpers the formats share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rflint.about import __version__
from rflint.core.diagnostics import Diagnostic, Fix, ModelReport
from rflint.core.rules import rule_by_code


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
