"""The concise line plus a code frame (ruff's ``full``): the source lines of the span with a
line-number gutter, ``^`` under the reported span, then the fix as ``help:`` and the other
fixes rflint verified as ``note:`` lines. A file that cannot be read loses only its frame."""

from __future__ import annotations

from rflint.core.diagnostics import Diagnostic
from rflint.report.summary import RunSummary
from rflint.report.concise import diagnostic_line, summary


def render(run: RunSummary) -> str:
    return render_diagnostics(run, run.diagnostics) + render_end(run)


def render_diagnostics(run: RunSummary, diagnostics: list[Diagnostic]) -> str:
    """Some of the run's diagnostics, each a block and a blank line (see concise's)."""
    sources: dict[str, list[str] | None] = {}
    return "".join(line + "\n" for diagnostic in diagnostics for line in [*block(run, diagnostic, sources), ""])


def render_end(run: RunSummary) -> str:
    return "".join(line + "\n" for line in summary(run))


def block(run: RunSummary, diagnostic: Diagnostic, sources: dict[str, list[str] | None]) -> list[str]:
    if diagnostic.file not in sources:
        sources[diagnostic.file] = read_lines(diagnostic.file)
    lines = [diagnostic_line(run, diagnostic)]
    lines += code_frame(diagnostic, sources[diagnostic.file])
    if diagnostic.fix is not None:
        lines.append(f"help: {diagnostic.fix.description}")
    lines += [f"note: alternative ({fix.applicability}): {fix.description}" for fix in diagnostic.alternatives]
    if diagnostic.fix_note:
        lines.append(f"note: {diagnostic.fix_note}")
    return lines


def read_lines(file: str) -> list[str] | None:
    """The file's lines; None for a binary file (a saved ``.keras`` archive) or an unreadable one."""
    try:
        with open(file, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    return None if "\x00" in text else text.splitlines()


def code_frame(diagnostic: Diagnostic, source: list[str] | None) -> list[str]:
    """Lines ``line..end_line`` of the file, the first one underlined from ``column`` to
    ``end_column`` (or to its end when the span goes on); nothing if they are not there."""
    first, last = diagnostic.line, max(diagnostic.line, diagnostic.end_line)
    if source is None or not 1 <= first <= last <= len(source):
        return []
    width = len(str(last))
    gutter = " " * width + " |"
    shown = [f"{number:>{width}} | {source[number - 1]}".rstrip() for number in range(first, last + 1)]
    text = source[first - 1]
    end = diagnostic.end_column if diagnostic.end_line == first else len(text.rstrip()) + 1
    start = diagnostic.column - 1
    # Keep the tabs before the span so the carets line up however the terminal expands them.
    indent = "".join(c if c == "\t" else " " for c in text[:start])
    underline = f"{gutter} {indent}{'^' * max(1, end - 1 - start)}"
    return [gutter, shown[0], underline, *shown[1:], gutter]
