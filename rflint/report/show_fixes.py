"""``--show-fixes``: each applied or proposed fix with I_min, FLOPs and params before/after."""

from __future__ import annotations

from rflint.core.diagnostics import Diagnostic, Fix
from rflint.report.summary import RunSummary


def render(run: RunSummary, applied: list[Diagnostic], proposed: list[Diagnostic]) -> str:
    sections = [("Applied fixes:", applied), ("Proposed fixes:", [d for d in proposed if d.fix or d.fix_note])]
    lines = []
    for title, diagnostics in sections:
        if diagnostics:
            lines += ["", title] + [fix_line(run, d) for d in diagnostics]
    return "".join(line + "\n" for line in lines)


def fix_line(run: RunSummary, diagnostic: Diagnostic) -> str:
    fix = diagnostic.fix
    where = f"{run.path(diagnostic.file)}:{diagnostic.line}:{diagnostic.column}"
    if fix is None:  # its search ran out of time
        return f"- {where} [{', '.join(diagnostic.models)}] {diagnostic.fix_note}"
    return f"- {where} [{changed_models(run, diagnostic)}] ({fix.applicability}) {fix.description}{figures(fix)}"


def changed_models(run: RunSummary, diagnostic: Diagnostic) -> str:
    """The models a fix changes, those of another file than the diagnostic's with their
    file: names repeat across files (torchvision's inception_v3 and its quantized twin)."""
    fix = diagnostic.fix
    if not fix.models:
        return ", ".join(diagnostic.models)
    files = fix.model_files or (diagnostic.file,) * len(fix.models)
    return ", ".join(name if file == diagnostic.file else f"{name} ({run.path(file)})"
                     for name, file in zip(fix.models, files))


def figures(fix: Fix) -> str:
    if fix.flops_before is None or fix.flops_after is None:
        return ""
    ratio = f" (x{fix.flops_after / fix.flops_before:.2f})" if fix.flops_before else ""
    params = ""
    if fix.params_before is not None and fix.params_after is not None:
        params = f"; params {si_units(fix.params_before)} -> {si_units(fix.params_after)}"
    return f"; FLOPs {si_units(fix.flops_before)} -> {si_units(fix.flops_after)}{ratio}{params}"


def si_units(value: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.2f} {unit}"
    return str(value)
