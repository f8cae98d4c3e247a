"""GitHub Actions workflow commands: each diagnostic becomes an annotation on the pull
request's diff (ruff's ``github`` format)."""

from __future__ import annotations

from rflint.core.diagnostics import Diagnostic
from rflint.report.summary import RunSummary, with_models

COMMANDS = {"error": "error", "warning": "warning"}  # any other severity is a notice


def render(run: RunSummary) -> str:
    return "".join(annotation(run, d) + "\n" for d in run.diagnostics)


def annotation(run: RunSummary, diagnostic: Diagnostic) -> str:
    path = run.path(diagnostic.file)
    properties = {
        "title": f"rflint ({diagnostic.code})",
        "file": path,
        "line": diagnostic.line,
        "col": diagnostic.column,
        "endLine": diagnostic.end_line,
        "endColumn": diagnostic.end_column,
    }
    command = COMMANDS.get(diagnostic.severity, "notice")
    listed = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    text = f"{path}:{diagnostic.line}:{diagnostic.column}: {diagnostic.code} {with_models(diagnostic)}"
    return f"::{command} {listed}::{escape_data(text)}"


def escape_data(text: str) -> str:
    """The runner would read a raw newline as the end of the command and ``%`` as an escape."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """In property values ``,`` separates properties and ``:`` ends the list."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")
