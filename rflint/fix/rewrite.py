"""Apply a fix's edits to a source file: only the literals' characters change, or nothing does.

libcst finds each edited literal by position, so comments, spacing and line endings survive
untouched; the result is re-parsed and compared character by character with the original
before anything is written, in the file's own encoding. The write is atomic and keeps the
file as the user left it (mode, owner, group, hard links), or does not happen. A file whose
bytes differ from those the analysis imported is refused: its literals may no longer be
where the analysis saw them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import stat
import tokenize
from typing import TYPE_CHECKING, BinaryIO, Iterable, Iterator

if TYPE_CHECKING:
    import libcst as cst

    from rflint.core.diagnostics import Edit

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
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

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
    new_text = _inserted(_replace_literals(wrapper.module, new_values), replacements)
    _check_only_literals_changed(file, text, new_text, replacements)
    return new_text


def write_atomically(file: str | os.PathLike, new_text: str, expected_sha256: str) -> None:
    """Replace ``file`` by ``new_text`` in one step, as the user left it: its encoding, mode,
    owner and group. Raises RewriteError (the file untouched) when it cannot be done so.

    Concurrent rflint runs take turns on an exclusive lock of the file; the one that comes
    second finds the file replaced or changed and refuses. The hash is checked again under
    the lock, so an editor saving the file since ``apply_edits`` is not overwritten either.
    A read-only file, or one with hard links (a rename would split them), is not written.
    """
    path = os.path.realpath(file)  # a symlink stays a symlink: its target is rewritten
    try:
        with _locked(path) as (handle, status):
            if hashlib.sha256(_read_all(handle)).hexdigest() != expected_sha256:
                raise RewriteError(f"{file}: changed since it was analysed; run rflint again")
            _check_writable(file, status)
            encoded = new_text.encode(_encoding(_read_all(handle)))
            _replace(path, encoded, status)
    except OSError as error:
        raise RewriteError(f"{file}: cannot write: {error.strerror or error}") from None


def refusal(file: str | os.PathLike, expected_sha256: str) -> str | None:
    """Why ``write_atomically`` would refuse ``file`` before trying to write (it changed
    since it was analysed, it is read-only, it has hard links), or None."""
    try:
        with open(os.path.realpath(file), "rb") as handle:
            status = os.fstat(handle.fileno())
            if hashlib.sha256(handle.read()).hexdigest() != expected_sha256:
                return "changed since it was analysed; run rflint again"
        _check_writable(file, status)
    except RewriteError as error:
        return str(error).removeprefix(f"{file}: ")
    except OSError as error:
        return f"cannot read: {error.strerror or error}"
    return None


@contextlib.contextmanager
def _locked(path: str) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """The file open and exclusively locked, with its status; refused if another process
    replaced it while this one waited for the lock."""
    with open(path, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        status = os.fstat(handle.fileno())
        now = os.stat(path)
        if (now.st_dev, now.st_ino) != (status.st_dev, status.st_ino):
            raise RewriteError(f"{path}: changed since it was analysed (rewritten by another process); run rflint again")
        yield handle, status


def _read_all(handle: BinaryIO) -> bytes:
    handle.seek(0)
    return handle.read()


def _check_writable(file, status: os.stat_result) -> None:
    mode = stat.S_IMODE(status.st_mode)
    if not mode & 0o222 or (os.geteuid() != 0 and not os.access(file, os.W_OK)):
        raise RewriteError(f"{file}: read-only (mode {mode:04o}); not written")
    if status.st_nlink > 1:
        raise RewriteError(f"{file}: has {status.st_nlink} hard links, which a rewrite would split; not written")


def _replace(path: str, data: bytes, status: os.stat_result) -> None:
    """Write a locked temporary file beside ``path`` with its mode, owner and group, then
    rename it over ``path``. The lock tells ``remove_stale_temporaries`` the file is in use;
    a process killed before the rename leaves it for the next run to remove."""
    import tempfile  # imported by the writes only: every run imports this module (remove_stale_temporaries)

    folder, name = os.path.split(path)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), stat.S_IMODE(status.st_mode))
            if (status.st_uid, status.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(handle.fileno(), status.st_uid, status.st_gid)
                except PermissionError:
                    raise RewriteError(f"{path}: cannot keep its owner and group ({status.st_uid}:{status.st_gid});"
                                       " not written") from None
            os.fsync(handle.fileno())
            os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


TEMPORARY_SUFFIX = ".rflint"
_TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{8}" + re.escape(TEMPORARY_SUFFIX))  # mkstemp's 8 random characters


def remove_stale_temporaries(folders: Iterable[str | os.PathLike]) -> list[str]:
    """Delete the temporary files that a killed ``--fix`` left in ``folders`` (those no
    process holds a lock on); returns their paths."""
    removed = []
    for folder in folders:
        try:
            names = [name for name in os.listdir(folder) if _TEMPORARY.fullmatch(name)]
        except OSError:
            continue
        for name in names:
            temporary = os.path.join(folder, name)
            try:
                with open(temporary, "rb") as handle:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.unlink(temporary)
            except OSError:  # locked by a running rflint, or already gone
                continue
            removed.append(temporary)
    return removed


def new_bytes(file: str | os.PathLike, new_text: str) -> bytes:
    """``new_text`` encoded as ``file`` is (its coding cookie, its BOM)."""
    with open(file, "rb") as handle:
        return new_text.encode(_encoding(handle.read()))


def unified_diff(shown_path: str, old: bytes, new: bytes) -> bytes:
    """What ``--diff`` prints for one file (empty when nothing changes), in the file's own
    bytes: its encoding, BOM and line ends, so ``git apply`` and ``patch -p1`` take it."""
    import difflib  # as tempfile above

    name = os.fsencode(shown_path)
    lines = difflib.diff_bytes(difflib.unified_diff, _PATCH_LINE.findall(old), _PATCH_LINE.findall(new),
                               b"a/" + name, b"b/" + name)
    return b"".join(line if line.endswith(b"\n") else line + b"\n\\ No newline at end of file\n" for line in lines)


_PATCH_LINE = re.compile(rb"[^\n]*\n|[^\n]+\Z")  # patch tools end lines at \n only: a \r stays in the line


def _replace_literals(module: cst.Module, new_values: dict[cst.Integer, str]) -> str:
    """The module's code with each of those Integer nodes spelled anew, the rest untouched.
    libcst is imported here, not with the module: the warm cached run imports this module
    (``remove_stale_temporaries``) and must stay cheap."""
    import libcst as cst

    class LiteralReplacer(cst.CSTTransformer):
        def leave_Integer(self, original_node: cst.Integer, updated_node: cst.Integer) -> cst.Integer:
            if original_node in new_values:
                return updated_node.with_changes(value=new_values[original_node])
            return updated_node

    return module.visit(LiteralReplacer()).code


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
    import libcst as cst

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
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    reparsed = MetadataWrapper(_parse(file, new_text)).resolve(PositionProvider)
    starts = {(p.start.line, p.start.column + 1): node.value
              for node, p in reparsed.items() if isinstance(node, cst.Integer)}
    for edit in edits:
        inserted = _KEYWORD_INSERTION.fullmatch(edit.new) if not edit.old else None
        column = edit.column + inserted.start(1) if inserted else edit.column
        if starts.get((edit.line, column)) != (inserted.group(1) if inserted else edit.new):
            raise RewriteError(f"{file}:{edit.line}:{edit.column}: {edit.new!r} does not parse as the new literal")
