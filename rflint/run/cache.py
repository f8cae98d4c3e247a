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
import re
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, is_dataclass
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path, PurePath

from rflint.about import PACKAGE_DIR, __version__
from rflint.core.diagnostics import FileReport
from rflint.core.errors import describe_os_error
from rflint.run.sandbox import value_digest

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
                "python": sys.version, "options": options}
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(canonical.encode()).hexdigest()


@functools.cache
def _source_digest() -> str:
    """rflint's own code: in an editable install, results change while the version does not.

    Read once per process, near when its modules were imported: later edits on disk do not
    change the code this process runs.
    """
    package = Path(PACKAGE_DIR)
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
    hashes: dict[str, str]  # the file, its imported and its read files -> sha256 of their content
    analyzed: frozenset[str]  # those of them that were in the analyzed set
    report: FileReport
    environment: dict[str, str | None]  # variables the import and builds read -> digest of the value
    distributions: dict[str, str | None]  # installed distributions they imported -> version


ABSENT = "absent"  # the hash of a file the analysis tried to read and did not find
MAX_AGE_DAYS = 30  # entries unused for longer are deleted
MAX_BYTES = 256 * 2**20  # beyond this, least recently used entries are deleted
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}")


class _Damaged(Exception):
    """An entry that cannot be an entry (a folder, a FIFO, bad bytes); the reason is the message."""


class Cache:
    """One run's view of the cache folder; each file's content is hashed at most once per run.

    ``analyzed`` is the run's analyzed set: a result depends on which of the files it imports
    are analyzed (construction sites and literals are only recorded in those), so an entry is
    reused only when the same ones are. Problems are collected in ``warnings``, one line each
    kind per run: an unusable folder turns the cache off for the run, damaged entries are
    deleted (and counted).
    """

    def __init__(self, folder: Path, fingerprint: str, analyzed: frozenset[str],
                 max_age_days: float = MAX_AGE_DAYS, max_bytes: int = MAX_BYTES):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.analyzed = frozenset(analyzed)
        self.max_age_days, self.max_bytes = max_age_days, max_bytes
        self._entries = self.folder / __version__
        self._hashes: dict[str, str | None] = {}
        self._versions: dict[str, str | None] = {}
        self._started_ns = time.time_ns()
        self._prepared = False
        self._unusable: str | None = None  # why the folder cannot be used this run
        self._checked = False
        self._damaged: list[str] = []  # "path: reason"
        self._stored = 0

    @property
    def warnings(self) -> list[str]:
        warnings = [f"cache folder {self.folder} is unusable ({self._unusable}); not caching this run"] if self._unusable else []
        if self._damaged:
            more = f" (and {len(self._damaged) - 1} more)" if len(self._damaged) > 1 else ""
            warnings.append(f"ignoring corrupted cache entry {self._damaged[0]}{more}")
        return warnings

    def get(self, file: str) -> FileReport | None:
        """The stored report of ``file``, or None when anything it depends on changed."""
        if not self._usable():
            return None
        path = self._entry_path(file)
        try:
            entry = self._decode(_read_entry(path), file)
        except FileNotFoundError:
            return None
        except (OSError, _Damaged) as error:
            self._discard(path, error.strerror if isinstance(error, OSError) else str(error))
            return None
        if self.analyzed.intersection(entry.hashes) != entry.analyzed:
            return None
        if any(self._content_hash(dependency) != digest for dependency, digest in entry.hashes.items()):
            return None
        if any(_environment_digest(name) != digest for name, digest in entry.environment.items()):
            return None
        if any(self._version(name) != version for name, version in entry.distributions.items()):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for eviction
        return entry.report

    def put(self, report: FileReport) -> None:
        """Store ``report`` keyed on its file, its imported and read files, the environment
        variables and the installed distributions its import and builds used.

        The hashes are this run's first ones (``get`` takes them before analysis), so an edit
        made during the analysis makes the next run miss. A dependency modified after this
        Cache was created may differ from what the analysis read, so such a report is not
        stored; nor is one with file-level diagnostics: its import failed or timed out, so
        the files it would have imported are unknown.
        """
        if report.diagnostics or not self._usable():
            return
        dependencies = (report.file, *report.imported_files, *report.read_files)
        hashes = {dependency: self._content_hash(dependency) for dependency in dependencies}
        if None in hashes.values():
            return
        if not all(self._unmodified_since_start(f) for f, digest in hashes.items() if digest != ABSENT):
            return
        distributions = {name: self._version(name) for top in report.installed for name in _distributions().get(top, ())}
        entry = _Entry(report.file, hashes, self.analyzed.intersection(hashes), report, report.environment, distributions)
        payload = pickle.dumps(entry, pickle.HIGHEST_PROTOCOL)
        path = self._entry_path(report.file)
        try:
            self._prepare()
            write_file_atomically(path, _MAGIC + hashlib.sha256(payload).digest() + payload)
            self._stored += 1
        except OSError as error:
            self._unusable = f"cannot write {describe_os_error(error)}"

    def finish(self) -> list[str]:
        """End the run: evict old entries if this run stored any; the run's warnings."""
        if self._stored:
            self._evict()
        return self.warnings

    def _usable(self) -> bool:
        """Checked once per run: the nearest existing folder on the way to the entries
        must be a folder we can read."""
        if not self._checked:
            self._checked = True
            for path in (self._entries, *self._entries.parents):
                try:
                    mode = os.stat(path).st_mode
                except (FileNotFoundError, NotADirectoryError):  # look further up
                    continue
                except OSError as error:
                    self._unusable = describe_os_error(error)
                    break
                if not stat.S_ISDIR(mode):
                    self._unusable = f"{path} is not a folder"
                elif not os.access(path, os.R_OK | os.X_OK):
                    self._unusable = f"{path}: permission denied"
                break
        return self._unusable is None

    def _discard(self, path: Path, reason: str) -> None:
        self._damaged.append(f"{path}: {reason}")
        _remove(path)

    def _entry_path(self, file: str) -> Path:
        key = f"{self.fingerprint}\0{os.path.abspath(file)}"
        return self._entries / hashlib.sha256(key.encode()).hexdigest()

    def _content_hash(self, file: str) -> str | None:
        """sha256 of the content, ABSENT for a missing file, None if it cannot be read."""
        if file not in self._hashes:
            try:
                self._hashes[file] = hashlib.sha256(Path(file).read_bytes()).hexdigest()
            except FileNotFoundError:
                self._hashes[file] = ABSENT
            except OSError:
                self._hashes[file] = None
        return self._hashes[file]

    def _version(self, distribution: str) -> str | None:
        if distribution not in self._versions:
            try:
                self._versions[distribution] = version(distribution)
            except PackageNotFoundError:
                self._versions[distribution] = None
        return self._versions[distribution]

    def _unmodified_since_start(self, file: str) -> bool:
        try:
            return os.stat(file).st_mtime_ns <= self._started_ns
        except OSError:
            return False

    def _decode(self, data: bytes, file: str) -> _Entry:
        """Verify the checksum before unpickling; raises _Damaged with the reason."""
        payload = data[len(_MAGIC) + _CHECKSUM_SIZE:]
        if not data.startswith(_MAGIC):
            raise _Damaged("not an rflint cache entry")
        if data[len(_MAGIC):len(_MAGIC) + _CHECKSUM_SIZE] != hashlib.sha256(payload).digest():
            raise _Damaged("checksum mismatch (truncated or overwritten)")
        try:
            entry = pickle.loads(payload)
        except Exception as error:  # whole bytes can still name classes this rflint lacks
            raise _Damaged(f"cannot unpickle: {type(error).__name__}: {error}") from None
        if isinstance(entry, _Entry) and entry.file == file and isinstance(entry.report, FileReport):
            return entry
        raise _Damaged("not the entry of this file")

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

    def _evict(self) -> None:
        """Delete entries unused for ``max_age_days``, then the least recently used ones
        until the entries take at most ``max_bytes``, and temporary files a killed run left.
        Other rflint versions' folders are only touched in a folder rflint made (tagged)."""
        folders = [self._entries]
        if _tagged(self.folder):
            folders = [path for path in self.folder.iterdir() if path.is_dir() and not path.is_symlink()]
        now = time.time()
        entries = []
        for folder in folders:
            for path in folder.iterdir():
                with contextlib.suppress(OSError):
                    status = path.lstat()
                    if path.name.startswith(".tmp-") and now - status.st_mtime > 3600:
                        path.unlink()
                    elif _ENTRY_NAME.fullmatch(path.name) and stat.S_ISREG(status.st_mode):
                        entries.append((status.st_mtime, status.st_size, path))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        for used, size, path in entries:
            if now - used <= self.max_age_days * 86400 and total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
        for folder in folders:
            if folder != self._entries:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty


def _read_entry(path: Path) -> bytes:
    """An entry's bytes, without blocking on a FIFO or reading a device."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise _Damaged("not a regular file")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(descriptor)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@functools.cache
def _distributions() -> dict[str, list[str]]:
    """Top-level module name -> the installed distributions providing it (read once per run
    that stores entries: it lists every distribution, about 0.2 s)."""
    return packages_distributions()


def _environment_digest(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value_digest(value)


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


def _tagged(folder: Path) -> bool:
    try:
        return (folder / "CACHEDIR.TAG").read_text().startswith(CACHEDIR_SIGNATURE)
    except OSError:
        return False


def clean(folder: Path) -> None:
    """Delete the cache folder (``rflint --clean``) if rflint made it.

    A folder without rflint's ``CACHEDIR.TAG`` raises ValueError instead, so that a mistaken
    ``--cache-dir .`` cannot delete a project. A missing folder is already clean.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not _tagged(folder):
        raise ValueError(f"{folder} has no CACHEDIR.TAG, so it is not an rflint cache; not deleting it")
    shutil.rmtree(folder)
