"""Reuse the reports of files whose inputs did not change, so a warm run never imports torch.

Convention 22: one entry per linted file and fingerprint in ``<folder>/<rflint version>/<key>``.
An entry is reused only while the content of the file and of every file its import pulled
in is unchanged. Content hashes, not mtimes as in ruff: a trace costs seconds, hashing costs
milliseconds, and a stale result is worse than either (ruff#17619).

Entries are pickles behind a sha256 of the payload, so a truncated or garbled file is caught
before unpickling and ignored with a warning. Pickle trusts whoever can write the cache
folder; rflint already executes the project's own code, so that adds no new trust.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, is_dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePath

from . import __version__
from .diagnostics import FileReport

CACHEDIR_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
_MARKERS = {
    ".gitignore": "# Created by rflint.\n*\n",
    "CACHEDIR.TAG": f"{CACHEDIR_SIGNATURE}\n"
                    "# This file is a cache directory tag created by rflint.\n"
                    "# For information about cache directory tags see https://bford.info/cachedir/\n",
}
_MAGIC = b"rflint-cache-entry 1\n"
_CHECKSUM_SIZE = hashlib.sha256().digest_size


def fingerprint(options: dict) -> str:
    """Everything but file contents that decides a result: rflint, torch, and ``options``.

    ``options`` are the settings that change analysis (input resolution, fix search,
    configured models); settings applied after analysis (select, noqa) must stay out, or
    changing them would throw the cache away for nothing.
    """
    identity = {"rflint": __version__, "rflint-source": _source_digest(), "torch": _torch_version(),
                "options": options}
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(canonical.encode()).hexdigest()


@functools.cache
def _source_digest() -> str:
    """rflint's own code: in an editable install, results change while the version does not.

    Read once per process, near when its modules were imported: later edits on disk do not
    change the code this process runs.
    """
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()


def _torch_version() -> str | None:
    """From the installed metadata: importing torch would cost the seconds the cache saves."""
    try:
        return version("torch")
    except PackageNotFoundError:
        return None


def _jsonable(value):
    """The settings types JSON lacks (configured ModelEntry, paths, sets), in a stable form."""
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot fingerprint {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class _Entry:
    file: str
    hashes: dict[str, str]  # the file and its imported files -> sha256 of their content
    analyzed: frozenset[str]  # those of them that were in the analyzed set
    report: FileReport


class Cache:
    """One run's view of the cache folder; each file's content is hashed at most once per run.

    ``analyzed`` is the run's analyzed set: a result depends on which of the files it imports
    are analyzed (construction sites and literals are only recorded in those), so an entry is
    reused only when the same ones are.
    """

    def __init__(self, folder: Path, fingerprint: str, analyzed: frozenset[str]):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.analyzed = frozenset(analyzed)
        self.warnings: list[str] = []
        self._entries = self.folder / __version__
        self._hashes: dict[str, str | None] = {}
        self._started_ns = time.time_ns()
        self._prepared = False
        self._writable = True

    def get(self, file: str) -> FileReport | None:
        """The stored report of ``file``, or None when anything it depends on changed."""
        path = self._entry_path(file)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            self.warnings.append(f"cannot read cache entry {path}: {error}")
            return None
        entry = self._decode(path, data, file)
        if entry is None or self.analyzed.intersection(entry.hashes) != entry.analyzed:
            return None
        if any(self._content_hash(dependency) != digest for dependency, digest in entry.hashes.items()):
            return None
        return entry.report

    def put(self, report: FileReport) -> None:
        """Store ``report`` with the content hashes of its file and of its imported files.

        The hashes are this run's first ones (``get`` takes them before analysis), so an edit
        made during the analysis makes the next run miss. A dependency modified after this
        Cache was created may differ from what the analysis read, so such a report is not
        stored; nor is one with file-level diagnostics: its import failed or timed out, so
        the files it would have imported are unknown.
        """
        if report.diagnostics or not self._writable:
            return
        dependencies = (report.file, *report.imported_files)
        if not all(self._unmodified_since_start(dependency) for dependency in dependencies):
            return
        hashes = {dependency: self._content_hash(dependency) for dependency in dependencies}
        if None in hashes.values():
            return
        entry = _Entry(report.file, hashes, self.analyzed.intersection(hashes), report)
        payload = pickle.dumps(entry, pickle.HIGHEST_PROTOCOL)
        path = self._entry_path(report.file)
        try:
            self._prepare()
            write_file_atomically(path, _MAGIC + hashlib.sha256(payload).digest() + payload)
        except OSError as error:
            self._writable = False  # one warning, not one per file
            self.warnings.append(f"cannot write cache entry {path}: {error}; not caching this run")

    def _entry_path(self, file: str) -> Path:
        key = f"{self.fingerprint}\0{os.path.abspath(file)}"
        return self._entries / hashlib.sha256(key.encode()).hexdigest()

    def _content_hash(self, file: str) -> str | None:
        if file not in self._hashes:
            try:
                self._hashes[file] = hashlib.sha256(Path(file).read_bytes()).hexdigest()
            except OSError:
                self._hashes[file] = None
        return self._hashes[file]

    def _unmodified_since_start(self, file: str) -> bool:
        try:
            return os.stat(file).st_mtime_ns <= self._started_ns
        except OSError:
            return False

    def _decode(self, path: Path, data: bytes, file: str) -> _Entry | None:
        """Verify the checksum before unpickling; a damaged entry is reported and deleted."""
        payload = data[len(_MAGIC) + _CHECKSUM_SIZE:]
        if not data.startswith(_MAGIC):
            reason = "not an rflint cache entry"
        elif data[len(_MAGIC):len(_MAGIC) + _CHECKSUM_SIZE] != hashlib.sha256(payload).digest():
            reason = "checksum mismatch (truncated or overwritten)"
        else:
            try:
                entry = pickle.loads(payload)
            except Exception as error:  # whole bytes can still name classes this rflint lacks
                reason = f"cannot unpickle: {type(error).__name__}: {error}"
            else:
                if isinstance(entry, _Entry) and entry.file == file and isinstance(entry.report, FileReport):
                    return entry
                reason = "not the entry of this file"
        self.warnings.append(f"ignoring corrupted cache entry {path}: {reason}")
        with contextlib.suppress(OSError):
            path.unlink()
        return None

    def _prepare(self) -> None:
        """Create the folder; mark it for git and backup tools only if rflint owns it.

        An existing non-empty folder (``--cache-dir .``) keeps its own ``.gitignore``, and gets
        no ``CACHEDIR.TAG`` that would make backups skip it or let ``clean`` delete it.
        """
        if self._prepared:
            return
        try:
            self.folder.mkdir(parents=True)
            owned = True
        except FileExistsError:
            owned = not any(self.folder.iterdir())
        for name, text in _MARKERS.items() if owned else ():
            write_file_atomically(self.folder / name, text.encode())
        self._entries.mkdir(exist_ok=True)
        self._prepared = True


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write a temporary file and rename it: concurrent runs see the old or the new file, never half."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def clean(folder: Path) -> None:
    """Delete the cache folder (``rflint --clean``) if rflint made it.

    A folder without rflint's ``CACHEDIR.TAG`` raises ValueError instead, so that a mistaken
    ``--cache-dir .`` cannot delete a project. A missing folder is already clean.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    try:
        tagged = (folder / "CACHEDIR.TAG").read_text().startswith(CACHEDIR_SIGNATURE)
    except OSError:
        tagged = False
    if not tagged:
        raise ValueError(f"{folder} has no CACHEDIR.TAG, so it is not an rflint cache; not deleting it")
    shutil.rmtree(folder)
