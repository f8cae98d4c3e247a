"""Apply a fix's edits to a source file: only the literals' characters change, or nothing does.

libcst finds each edited literal by position, so comments, spacing and line endings survive
untouched; the result is re-parsed and compared character by character with the original
before anything is written, and the write is atomic. A file whose content changed since it
was analysed is refused: its literals may no longer be where the analysis saw them.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import re
import stat
import tempfile
import tokenize
from typing import Iterable

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .diagnostics import Edit

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")  # the tokenizer's line ends, kept
# An insertion (``old`` empty) adds one keyword argument after a literal: Keras's
# ``AveragePooling2D(2)`` takes its stride from the pool size, so the fix adds ``strides=``.
_KEYWORD_INSERTION = re.compile(r", [a-z_]+=(\d+)")


class RewriteError(Exception):
    """A fix cannot be applied; the file is left byte for byte as it was."""


def file_sha256(path: str | os.PathLike) -> str:
    """The content hash to record at analysis time and pass to ``apply_edits``."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def apply_edits(file: str | os.PathLike, edits: Iterable[Edit], expected_sha256: str) -> str:
    """The text of ``file`` with each edit's literal replaced; nothing is written.

    Raises RewriteError if the file changed since analysis, if an edit does not point at an
    integer literal spelled ``edit.old``, or if the result differs from the original
    anywhere but in those literals.
    """
    text = _decode(_read_unchanged(file, expected_sha256))
    replacements = _replacements(file, edits)
    wrapper = MetadataWrapper(_parse(file, text))
    literals = {
        (position.start.line, position.start.column + 1): (node, position)
        for node, position in wrapper.resolve(PositionProvider).items()
        if isinstance(node, cst.Integer)
    }
    new_values = {}
    for edit in replacements:
        if not edit.old:
            continue
        node, position = literals.get((edit.line, edit.column), (None, None))
        end = None if position is None else (position.end.line, position.end.column + 1)
        if node is None or node.value != edit.old or end != (edit.end_line, edit.end_column):
            raise RewriteError(f"{file}:{edit.line}:{edit.column}: no integer literal {edit.old!r} here")
        new_values[node] = edit.new
    new_text = _inserted(wrapper.module.visit(_LiteralReplacer(new_values)).code, replacements)
    _check_only_literals_changed(file, text, new_text, replacements)
    return new_text


def write_atomically(file: str | os.PathLike, new_text: str, expected_sha256: str) -> None:
    """Replace ``file`` by ``new_text`` in one step, keeping its encoding and mode.

    The hash is checked again just before the write, so an editor saving the file between
    ``apply_edits`` and now is not overwritten.
    """
    data = _read_unchanged(file, expected_sha256)
    encoded = new_text.encode(_encoding(data))
    folder, name = os.path.split(os.path.abspath(file))
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".rflint")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(encoded)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(os.stat(file).st_mode))
        os.replace(temporary, file)
    except BaseException:
        os.unlink(temporary)
        raise


def unified_diff(file: str | os.PathLike, old_text: str, new_text: str) -> str:
    """What ``--diff`` prints for one file (empty when nothing changes)."""
    lines = difflib.unified_diff(_LINE.findall(old_text), _LINE.findall(new_text), str(file), str(file))
    return "".join(line if line.endswith(("\n", "\r")) else f"{line}\n\\ No newline at end of file\n" for line in lines)


class _LiteralReplacer(cst.CSTTransformer):
    def __init__(self, new_values: dict[cst.Integer, str]):
        super().__init__()
        self.new_values = new_values

    def leave_Integer(self, original_node: cst.Integer, updated_node: cst.Integer) -> cst.Integer:
        if original_node in self.new_values:
            return updated_node.with_changes(value=self.new_values[original_node])
        return updated_node


def _inserted(text: str, edits: list[Edit]) -> str:
    """``text`` with the insertion edits spliced in, right to left (the literal edits
    keep their lengths' columns: they are at other positions)."""
    lines = _LINE.findall(text)
    for edit in sorted((e for e in edits if not e.old), key=lambda e: (e.line, e.column), reverse=True):
        line = lines[edit.line - 1]
        lines[edit.line - 1] = line[:edit.column - 1] + edit.new + line[edit.column - 1:]
    return "".join(lines)


def _read_unchanged(file, expected_sha256: str) -> bytes:
    with open(file, "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise RewriteError(f"{file}: changed since it was analysed; run rflint again")
    return data


def _encoding(data: bytes) -> str:
    """The encoding Python reads the file with (a coding cookie, ``utf-8-sig`` for a BOM)."""
    return tokenize.detect_encoding(io.BytesIO(data).readline)[0]


def _decode(data: bytes) -> str:
    return data.decode(_encoding(data))


def _parse(file, text: str) -> cst.Module:
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        raise RewriteError(f"{file}: cannot parse: {error.message}") from error


def _replacements(file, edits: Iterable[Edit]) -> list[Edit]:
    """The distinct edits, all of ``file``; two different texts for one literal are refused."""
    by_position: dict[tuple[int, int], Edit] = {}
    for edit in edits:
        if os.path.abspath(edit.file) != os.path.abspath(file):
            raise RewriteError(f"{file}: an edit for another file: {edit.file}")
        if not (edit.new.isdigit() or (not edit.old and _KEYWORD_INSERTION.fullmatch(edit.new))):
            raise RewriteError(f"{edit.file}:{edit.line}:{edit.column}: {edit.new!r} is not an integer literal")
        known = by_position.setdefault((edit.line, edit.column), edit)
        if known != edit:
            raise RewriteError(f"{file}:{edit.line}:{edit.column}: conflicting edits {known.new!r} and {edit.new!r}")
    return sorted(by_position.values(), key=lambda e: (e.line, e.column))


def _check_only_literals_changed(file, text: str, new_text: str, edits: list[Edit]) -> None:
    """``new_text`` must be ``text`` with exactly the edited characters replaced, and must
    parse with each new literal where the old one was."""
    lines = _LINE.findall(text)
    for edit in reversed(edits):  # right to left, so earlier columns stay valid
        line = lines[edit.line - 1]
        lines[edit.line - 1] = line[:edit.column - 1] + edit.new + line[edit.end_column - 1:]
    if "".join(lines) != new_text:
        raise RewriteError(f"{file}: the rewrite changed more than the edited literals")
    reparsed = MetadataWrapper(_parse(file, new_text)).resolve(PositionProvider)
    starts = {(p.start.line, p.start.column + 1): node.value
              for node, p in reparsed.items() if isinstance(node, cst.Integer)}
    for edit in edits:
        inserted = _KEYWORD_INSERTION.fullmatch(edit.new) if not edit.old else None
        column = edit.column + inserted.start(1) if inserted else edit.column
        if starts.get((edit.line, column)) != (inserted.group(1) if inserted else edit.new):
            raise RewriteError(f"{file}:{edit.line}:{edit.column}: {edit.new!r} does not parse as the new literal")
