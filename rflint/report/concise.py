"""The default format: one ``path:line:col: CODE [*] message`` line per diagnostic (flake8's
and ruff's), then ruff's summary of how many were found and how many ``--fix`` can fix."""

from __future__ import annotations

from rflint.core.diagnostics import Diagnostic
from rflint.report.summary import RunSummary, with_models


def render(run: RunSummary) -> str:
    lines = [diagnostic_line(run, d) for d in run.diagnostics]
    if run.quiet:
        return "".join(line + "\n" for line in lines)
    if lines:
        lines.append("")
    lines += summary(run)
    return "".join(line + "\n" for line in lines)


def diagnostic_line(run: RunSummary, diagnostic: Diagnostic) -> str:
    marker = " [*]" if run.applies(diagnostic.fix) else ""
    return (
        f"{run.path(diagnostic.file)}:{diagnostic.line}:{diagnostic.column}: "
        f"{diagnostic.code}{marker} {with_models(diagnostic)}"
    )


def summary(run: RunSummary) -> list[str]:
    """Ruff's closing lines (fixes are counted per diagnostic), then how many models were
    analyzed and how many candidates skipped."""
    return [*found(run), *models_line(run)]


def models_line(run: RunSummary) -> list[str]:
    """``12 models analyzed, 3 skipped``; nothing for a run that found no candidate at all."""
    if not run.models and not run.skipped:
        return []
    analyzed = sum(m.status == "analyzed" for m in run.models)
    line = f"{analyzed} model{plural(analyzed)} analyzed, {run.skipped} skipped"
    return [line + (" (--verbose says why)." if run.skipped else ".")]


def found(run: RunSummary) -> list[str]:
    remaining = len(run.diagnostics)
    if run.fixed:
        total = run.fixed + remaining
        lines = [f"Found {total} error{plural(total)} ({run.fixed} fixed, {remaining} remaining)."]
    elif remaining:
        lines = [f"Found {remaining} error{plural(remaining)}."]
    else:
        return ["All checks passed!"]
    applicable = sum(run.applies(d.fix) for d in run.diagnostics)
    hidden = sum(run.hides(d.fix) for d in run.diagnostics)
    hint = f"{hidden} hidden fix{plural(hidden, 'es')} can be enabled with the `--unsafe-fixes` option"
    if applicable and hidden:
        lines.append(f"[*] {applicable} fixable with the `--fix` option ({hint}).")
    elif applicable:
        lines.append(f"[*] {applicable} fixable with the `--fix` option.")
    elif hidden:
        lines.append(f"No fixes available ({hint}).")
    return lines


def plural(count: int, suffix: str = "s") -> str:
    return "" if count == 1 else suffix
