"""``rflint server``: a language server (LSP over stdio) for any editor with an LSP client.

An opened or saved Python file is linted as ``rflint FILE --force-exclude`` would lint it
(settings from the ``[tool.rflint]`` the file's folder finds, results from the cache, user
code in the runner's worker processes), in a background thread so the editor never
waits. The server then publishes the diagnostics, offers each verified fix as a code
action (a safe fix is the preferred one; an unsafe one says so in its title) and shows
the receptive fields of a flagged line on hover. The analysis imports the file, so it
follows the saved file, not unsaved edits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rflint.about import __version__
from rflint.core.diagnostics import Diagnostic, Edit, Fix, ModelReport
from rflint.core.noqa import read_lines

SEVERITIES = {"error": 1, "warning": 2}  # lsprotocol's DiagnosticSeverity values; others: information (3)


@dataclass
class Linted:
    """One lint of one file: what the editor is shown until the file is linted again."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    models: list[ModelReport] = field(default_factory=list)


def lint(file: str, root: str) -> tuple[Linted, list[str]]:
    """``rflint FILE --force-exclude`` run from ``root`` (where the cache lives), with fixes
    searched so they can be offered; configured models of other files are left out.
    Returns the lint and the warnings the command would print."""
    from rflint.run.options import parser
    from rflint.run.session import Session

    args = parser().parse_args([file, "--force-exclude", "--show-fixes", "--jobs", "1"])
    session = Session.from_args(args, Path(root))
    session.files = [f for f in session.files if os.path.realpath(f) == os.path.realpath(file)]
    outcome = session.run()
    return Linted(outcome.diagnostics, outcome.models), session.warnings


def lint_in_worker(file: str, root: str) -> None:
    """``rflint server --lint-file FILE --root ROOT``: the background worker. The runner
    forks, and forking the server (whose threads read stdin and run pygls' handlers) can
    deadlock a child on a lock another thread held; a fresh process per lint forks from a
    single thread, and the cache makes it cheap. The pickled result goes to the real
    stdout, so a model file's print cannot garble it."""
    from rflint.run.config import ConfigError
    from rflint.run.files import UsageError

    out = private_stdout()
    try:
        payload = lint(file, root)
    except (ConfigError, UsageError, KeyError, FileNotFoundError, ValueError) as error:
        payload = error.args[0] if error.args else str(error)
    pickle.dump(payload, out)
    out.flush()


async def lint_in_background(file: str, root: str) -> tuple[Linted, list[str]] | str:
    """The lint of ``file`` from a worker process, or the one-line error it ended with."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rflint", "server", "--lint-file", file, "--root", root,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0 or not out:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
        return f"linting {file} failed: {last[0]}"
    return pickle.loads(out)


def make_server():
    """The pygls server with rflint's features (pygls is imported only for ``rflint server``)."""
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer
    from pygls.uris import from_fs_path, to_fs_path

    server = LanguageServer("rflint", __version__)
    one_at_a_time = asyncio.Lock()
    linted: dict[str, Linted] = {}  # linted file -> its last lint

    def lsp_range(file: str, line: int, column: int, end_line: int, end_column: int) -> types.Range:
        """rflint's 1-based character span as the client counts (UTF-16 units by default); an
        empty span (a def line) covers the rest of its line, so editors underline something."""
        lines = read_lines(file)
        if (end_line, end_column) == (line, column):
            end_column = len(lines[line - 1]) + 1 if line <= len(lines) else column
        span = types.Range(types.Position(line - 1, column - 1), types.Position(end_line - 1, end_column - 1))
        return server.workspace.position_codec.range_to_client_units(list(lines), span)

    def lsp_diagnostic(d: Diagnostic) -> types.Diagnostic:
        return types.Diagnostic(
            range=lsp_range(d.file, d.line, d.column, d.end_line, d.end_column),
            message=f"[{', '.join(d.models)}] {d.message}" if d.models else d.message,
            severity=types.DiagnosticSeverity(SEVERITIES.get(d.severity, 3)),
            code=d.code,
            source="rflint",
        )

    def in_file(file: str) -> list[Diagnostic]:
        """The diagnostics located in ``file``, from the lints of every file (a block file
        shows what the models importing it build there)."""
        return [d for lint in linted.values() for d in lint.diagnostics if d.file == file]

    def publish(files: set[str]) -> None:
        for file in sorted(files):
            diagnostics = [lsp_diagnostic(d) for d in in_file(file)]
            server.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=from_fs_path(file), diagnostics=diagnostics))

    def lint_root() -> str:
        """Where the lint runs, as a command run from the project would: the workspace
        folder (its cache, paths relative to it), else the server's working directory;
        never the file's own folder, which may be an installed package."""
        return server.workspace.root_path or os.getcwd()

    async def lint_and_publish(uri: str) -> None:
        file = os.path.realpath(to_fs_path(uri))
        if not file.endswith(".py"):
            return
        async with one_at_a_time:
            outcome = await lint_in_background(file, lint_root())
        if isinstance(outcome, str):
            server.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"rflint: {outcome}"))
            return
        result, warnings = outcome
        for warning in warnings:
            server.window_log_message(types.LogMessageParams(types.MessageType.Warning, f"rflint: {warning}"))
        before = {d.file for d in linted.get(file, Linted()).diagnostics}
        linted[file] = result
        publish(before | {d.file for d in result.diagnostics} | {file})

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(params: types.DidOpenTextDocumentParams) -> None:
        await lint_and_publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(params: types.DidSaveTextDocumentParams) -> None:
        await lint_and_publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        file = os.path.realpath(to_fs_path(params.text_document.uri))
        closed = linted.pop(file, None)
        if closed is not None:
            publish({d.file for d in closed.diagnostics} | {file})

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        file = os.path.realpath(to_fs_path(params.text_document.uri))
        first, last = params.range.start.line + 1, params.range.end.line + 1
        actions = []
        for d in in_file(file):
            if d.line > last or d.end_line < first:
                continue
            for fix in (d.fix, *d.alternatives):
                if fix is not None and fix.edits:
                    actions.append(code_action_for(d, fix, preferred=fix is d.fix))
        return sorted(actions, key=lambda action: not action.is_preferred)

    def code_action_for(d: Diagnostic, fix: Fix, preferred: bool) -> types.CodeAction:
        label = {"safe": "safe", "unsafe": "unsafe: parameter shapes change, checkpoints will not load"}
        changes: dict[str, list[types.TextEdit]] = {}
        for edit in fix.edits:
            changes.setdefault(from_fs_path(edit.file), []).append(text_edit(edit))
        return types.CodeAction(
            title=f"rflint: {fix.description} ({label.get(fix.applicability, fix.applicability)})",
            kind=types.CodeActionKind.QuickFix,
            diagnostics=[lsp_diagnostic(d)],
            is_preferred=preferred and fix.applicability == "safe",
            edit=types.WorkspaceEdit(changes=changes),
        )

    def text_edit(edit: Edit) -> types.TextEdit:
        return types.TextEdit(lsp_range(edit.file, edit.line, edit.column, edit.end_line, edit.end_column), edit.new)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(params: types.HoverParams) -> types.Hover | None:
        file = os.path.realpath(to_fs_path(params.text_document.uri))
        line = params.position.line + 1
        models = [m for lint in linted.values() for m in lint.models]
        parts = [hover_text(d, models) for d in in_file(file) if d.line <= line <= d.end_line]
        parts = [part for part in parts if part]
        if not parts:
            return None
        return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, "\n\n".join(parts)))

    return server


def hover_text(d: Diagnostic, models: list[ModelReport]) -> str:
    """Markdown: per flagged layer its r_min, r_max and the model's I_res; on a model's
    def line its I_min, I_max and I_res."""
    from rflint.core.rules.base import fmt_size

    by_name = {m.name: m for m in models if m.result is not None}
    if d.layers:
        rows = []
        for ref in d.layers:
            for name in ref.models or d.models:
                model = by_name.get(name)
                layer = next((l for l in model.result.layers if l.name == ref.name), None) if model else None
                if layer is not None:
                    rows.append(f"| {name} | `{layer.name}` | {fmt_size(layer.r_min)} | {fmt_size(layer.r_max)} "
                                f"| {fmt_size(model.input_res)} |")
        head = "| model | layer | r_min | r_max | I_res |\n|---|---|---|---|---|\n"
        return f"**rflint {d.code}**: {d.message}\n\n{head}" + "\n".join(rows)
    described = [by_name[name] for name in d.models if name in by_name]
    if d.code != "RF003" or not described:
        return ""
    rows = "\n".join(f"| {m.name} | {fmt_size(m.result.i_min)} | {fmt_size(m.result.i_max)} | {fmt_size(m.input_res)} |"
                     for m in described)
    return f"**rflint {d.code}**: {d.message}\n\n| model | I_min | I_max | I_res |\n|---|---|---|---|\n{rows}"


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="rflint server",
        description="Run rflint's language server over stdio (for an editor's LSP client): diagnostics "
        "for opened and saved files, fixes as code actions, receptive fields on hover.",
    )
    p.add_argument("--lint-file", help=argparse.SUPPRESS)  # the server's own background worker
    p.add_argument("--root", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        import pygls  # noqa: F401
    except ImportError:
        print("rflint: error: rflint server needs pygls: pip install 'rflint[server]'", file=sys.stderr)
        return 2
    if args.lint_file:
        lint_in_worker(args.lint_file, args.root)
    else:
        make_server().start_io(stdin=sys.stdin.buffer, stdout=private_stdout())
    return 0


def private_stdout():
    """The real stdout, for this process's output alone (the protocol, a pickled lint).
    File descriptor 1 then points at stderr, so anything else that writes there (a model
    file's print at import, in a forked worker that inherits fd 1; a library's warning)
    cannot garble it."""
    sys.stdout.flush()
    private = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return private
