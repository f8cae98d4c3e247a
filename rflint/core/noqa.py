"""Suppression comments, found with ``tokenize`` so that a ``# noqa`` inside a string does not count.

Three scopes, told apart by where the comment sits:

- ``# noqa`` or ``# noqa: RF001, RF002`` at the end of the line a diagnostic reports
  suppresses it. For a diagnostic spanning several lines only its **first** line counts
  (ruff's ``noqa_row``); a comment on the closing line of a multi-line call does nothing.
- ``# rflint: noqa`` (optionally ``: CODES``) at the end of a model's ``def``/``class``
  line (the keyword's line, not a decorator's) suppresses every diagnostic of that model.
- ``# rflint: noqa`` (optionally ``: CODES``) on a line of its own suppresses the file.
  At the end of any other line it does nothing.

Codes follow flake8's regex: each is letters plus digits, separated by commas or
whitespace, and also matches as a prefix (``RF0``). ``noqa`` is case-insensitive, the codes
are not. A comment whose codes cannot be read (``# noqa : RF001``, ``# noqa: RF``) is bare
and suppresses everything, as in flake8. Torch-free.
"""

from __future__ import annotations

import functools
import io
import os
import re
import tokenize
from dataclasses import dataclass
from typing import Iterator, Sequence, Union

from rflint.core.diagnostics import Diagnostic

_CODES = r"(?::\s?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?"
_NOQA = re.compile(r"#\s*noqa" + _CODES, re.IGNORECASE)
_MENTIONS_NOQA = re.compile("noqa", re.IGNORECASE)
_RFLINT_NOQA = re.compile(r"#\s*rflint\s*:\s*noqa" + _CODES, re.IGNORECASE)


class _AllCodes:
    """What a directive without codes covers: every code. Truthy, unlike an empty set."""

    def __repr__(self) -> str:
        return "ALL"


ALL = _AllCodes()
NONE: frozenset[str] = frozenset()
Codes = Union[frozenset, _AllCodes]


def read_lines(file: str) -> tuple[str, ...]:
    """A file's lines as the scanner wants them (split on newlines only), read again once
    the file changes (the language server lints the same files for hours)."""
    try:
        stat = os.stat(file)
    except OSError:
        return ()
    return _read_lines(file, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _read_lines(file: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    try:
        with open(file, encoding="utf-8", errors="replace") as handle:
            return tuple(handle.read().split("\n"))
    except OSError:
        return ()


def covers(codes: Codes, code: str) -> bool:
    """Whether a directive's codes suppress ``code`` (a listed code may be a prefix)."""
    return codes is ALL or code.startswith(tuple(codes))


def suppressed(diagnostic: Diagnostic, lines: Sequence[str]) -> bool:
    """Whether a ``# noqa`` on the diagnostic's start line, or a file-level directive, covers it.

    ``lines`` is the text of ``diagnostic.file``, one string per line with or without the
    line ending, split like ``readlines()`` does (``str.splitlines()`` also splits at form
    feeds and would shift line numbers). Model-level directives are the caller's job: see ``model_suppressions``.
    """
    lines = tuple(lines)
    own_line = lines[diagnostic.line - 1] if 0 < diagnostic.line <= len(lines) else ""
    if not _NOQA.search(own_line) and not _mentions_rflint_noqa(lines):
        return False  # no directive can apply: no need to tokenize the file
    directives = _directives(lines)
    return covers(directives.file, diagnostic.code) or covers(directives.lines.get(diagnostic.line, NONE), diagnostic.code)


def model_suppressions(lines: Sequence[str], line: int) -> Codes:
    """The codes a ``# rflint: noqa`` at the end of ``line`` (a model's def/class line) suppresses."""
    lines = tuple(lines)
    return _directives(lines).trailing_rflint.get(line, NONE) if _mentions_rflint_noqa(lines) else NONE


def file_suppressions(lines: Sequence[str]) -> Codes:
    """The codes the own-line ``# rflint: noqa`` comments of a file suppress everywhere in it."""
    lines = tuple(lines)
    return _directives(lines).file if _mentions_rflint_noqa(lines) else NONE


@functools.lru_cache(maxsize=1024)
def _mentions_rflint_noqa(lines: tuple[str, ...]) -> bool:
    """Whether the text has anything like ``# rflint: noqa``, in a comment or not. Tokenizing a
    file costs about 20 ms per 500 lines; a warm run has 0.1 s for all of them, and most
    files with a ``# noqa`` for other linters have no rflint directive."""
    return any(_RFLINT_NOQA.search(line) for line in lines)


@dataclass(frozen=True)
class _Directives:
    lines: dict[int, Codes]  # "# noqa" comments by line
    trailing_rflint: dict[int, Codes]  # "# rflint: noqa" after code, by line
    file: Codes  # own-line "# rflint: noqa" comments, merged


@functools.lru_cache(maxsize=1024)
def _directives(lines: tuple[str, ...]) -> _Directives:
    """Read every comment of a file once; the cache makes per-diagnostic calls cheap."""
    source = "".join(line if line.endswith(("\n", "\r")) else line + "\n" for line in lines)
    if not _MENTIONS_NOQA.search(source):  # most files: no need to tokenize them
        return _Directives({}, {}, NONE)
    by_line: dict[int, Codes] = {}
    trailing_rflint: dict[int, Codes] = {}
    file: Codes = NONE
    for row, after_code, text in _comments(source):
        noqa = _NOQA.search(text)
        if noqa is not None:
            by_line[row] = _union(by_line.get(row, NONE), _codes(noqa))
        rflint_noqa = _RFLINT_NOQA.search(text)
        if rflint_noqa is not None and after_code:
            trailing_rflint[row] = _union(trailing_rflint.get(row, NONE), _codes(rflint_noqa))
        elif rflint_noqa is not None:
            file = _union(file, _codes(rflint_noqa))
    return _Directives(by_line, trailing_rflint, file)


_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def _comments(source: str) -> Iterator[tuple[int, bool, str]]:
    """(line, whether code ends on that line before it, text) of each real comment.

    Stops quietly where the file stops tokenizing: such a file gets an RF901 anyway.
    """
    last_code_row = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], last_code_row == token.start[0], token.string
            elif token.type not in _NOT_CODE:
                last_code_row = token.end[0]
    except (tokenize.TokenError, SyntaxError):
        return


def _codes(match: re.Match) -> Codes:
    text = match["codes"]
    return ALL if text is None else frozenset(re.split(r"[,\s]+", text))


def _union(first: Codes, second: Codes) -> Codes:
    return ALL if ALL in (first, second) else first | second
