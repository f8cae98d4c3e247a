"""Reuse the reports of files whose inputs did not change, so a warm run never imports torch.

Convention 22: one entry per linted file and fingerprint in ``<folder>/<rflint version>/<key>``.
An entry is reused only while the content of the file and of every file its import pulled
in is unchanged. Content hashes, not mtimes as in ruff: a trace costs seconds, hashing costs
milliseconds, and a stale result is worse than either (ruff#17619). A file is not read again
while its status (device, inode, size, mtime and ctime) is the one recorded with its hash, as
git trusts its index: an edit changes the ctime, and a status recorded within the file
system's timestamp granularity of the read is not trusted (the next edit could keep it).

Writing and deleting import what only they need (tempfile, shutil, importlib.metadata) where
they need it: a warm run only reads, and its whole budget is 0.1 s.

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
import stat
import sys
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from rflint.about import PACKAGE_DIR, __version__
from rflint.run.sandbox import value_digest

if TYPE_CHECKING:
    from rflint.core.diagnostics import FileReport

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
    """Everything but file contents and installed versions that decides a result: rflint,
    Python and ``options`` (torch's version is checked with each entry's distributions).

    ``options`` are the settings that change analysis (input resolution, fix search,
    configured models); settings applied after analysis (select, noqa) must stay out, or
    changing them would throw the cache away for nothing.
    """
    identity = {"rflint": __version__, "rflint-source": _source_digest(), "python": sys.version, "options": options}
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
    statuses: dict[str, tuple | None]  # those files -> their status when hashed, if it can vouch for the hash
    analyzed: frozenset[str]  # those of them that were in the analyzed set
    report: FileReport
    environment: dict[str, str | None]  # variables the import and builds read -> digest of the value
    distributions: dict[str, str | None]  # installed distributions they imported -> version


ABSENT = "absent"  # the hash of a file the analysis tried to read and did not find
RACY_NS = 2 * 10**9  # timestamps this close to the read may not change with the next edit (FAT: 2 s steps)
ALWAYS_CHECKED = ("torch",)  # distributions every entry depends on: the front end's
MAX_AGE_DAYS = 30  # entries unused for longer are deleted
MAX_BYTES = 256 * 2**20  # beyond this, least recently used entries are deleted
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}")
_INSTALLED_RECORD, _RUN_RECORD = ".installed-", ".run-"  # records beside the entries (not entries: dot names)
_RECORDS = (_INSTALLED_RECORD, _RUN_RECORD)


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
        self._statuses: dict[str, tuple | None] = {}  # file -> its status when hashed, if trustworthy
        self._started_ns = time.time_ns()
        self._prepared = False
        self._unusable: str | None = None  # why the folder cannot be used this run
        self._checked = False
        self._damaged: list[str] = []  # "path: reason"
        self._stored = 0
        self._reused: dict[str, _Entry] = {}  # file -> its entry, for files this run took from the cache

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
        if not self._unchanged(entry.hashes, entry.statuses, entry.environment, entry.distributions):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for eviction
        self._reused[file] = entry
        return entry.report

    def _unchanged(self, hashes: dict[str, str], statuses: dict[str, tuple | None],
                   environment: dict[str, str | None], distributions: dict[str, str | None]) -> bool:
        """Whether every file, environment variable and installed distribution a result
        depended on is as it was."""
        return (all(self._content_hash(file, (statuses.get(file), digest)) == digest for file, digest in hashes.items())
                and all(_environment_digest(name) == digest for name, digest in environment.items())
                and all(self._installed.version(name) == version for name, version in distributions.items()))

    def put(self, report: FileReport) -> None:
        """Store ``report`` keyed on its file, its imported and read files, the environment
        variables and the installed distributions its import and builds used.

        The hashes are this run's first ones (``get`` takes them before analysis), so an edit
        made during the analysis makes the next run miss. A dependency modified after this
        Cache was created may differ from what the analysis read, so such a report is not
        stored; nor is one with file-level diagnostics: its import failed or timed out, so
        the files it would have imported are unknown; nor an incomplete one (its time ran
        out, which depends on the machine's load, not on its inputs).
        """
        if report.diagnostics or not report.complete or not self._usable():
            return
        dependencies = (report.file, *report.imported_files, *report.read_files)
        hashes = {dependency: self._content_hash(dependency) for dependency in dependencies}
        if None in hashes.values():
            return
        if not all(self._unmodified_since_start(f) for f, digest in hashes.items() if digest != ABSENT):
            return
        names = {*ALWAYS_CHECKED, *(name for top in report.installed for name in self._installed.providing(top))}
        distributions = {name: self._installed.version(name) for name in sorted(names)}
        statuses = {dependency: self._statuses.get(dependency) for dependency in hashes}
        entry = _Entry(report.file, hashes, statuses, self.analyzed.intersection(hashes), report, report.environment,
                       distributions)
        payload = pickle.dumps(entry, pickle.HIGHEST_PROTOCOL)
        path = self._entry_path(report.file)
        try:
            self._prepare()
            write_file_atomically(path, _MAGIC + hashlib.sha256(payload).digest() + payload)
            self._stored += 1
        except OSError as error:
            from rflint.core.errors import describe_os_error

            self._unusable = f"cannot write {describe_os_error(error)}"

    def record_run(self, key: str, files: list[str], output: list[tuple[int, bytes]], status: int) -> None:
        """Remember a run's whole output (``output``: what it wrote, in order, as (fd, bytes))
        and exit status, for ``replay``: only a run that took each of ``files`` from the
        cache, so that replaying it says the same (``--verbose`` included)."""
        if not files or not self._usable() or not self._entries.is_dir() or set(files) - self._reused.keys():
            return
        entries = [self._reused[file] for file in files]
        record = {
            "key": key,
            "files": files,
            "hashes": {file: digest for entry in entries for file, digest in entry.hashes.items()},
            "environment": {name: digest for entry in entries for name, digest in entry.environment.items()},
            "distributions": {name: version for entry in entries for name, version in entry.distributions.items()},
            "output": [[fd, data.decode("latin-1")] for fd, data in output],
            "status": status,
        }
        record["statuses"] = {file: self._statuses.get(file) for file in record["hashes"]}
        with contextlib.suppress(OSError):
            write_file_atomically(self._run_path(key), json.dumps(record).encode())

    def replay(self, key: str, files: list[str]) -> tuple[list[tuple[int, bytes]], int] | None:
        """The output and exit status ``record_run`` stored under ``key`` if the run was over
        the same ``files`` and nothing any of their results depended on has changed since.
        ``key`` must hold everything else the output depends on (options, settings, the
        working directory, rflint itself)."""
        if not self._usable():
            return None
        path = self._run_path(key)
        try:
            record = json.loads(path.read_bytes())
            if record["key"] != key or record["files"] != files:
                return None
            statuses = {file: tuple(status) if status else None for file, status in record["statuses"].items()}
            if not self._unchanged(record["hashes"], statuses, record["environment"], record["distributions"]):
                return None
            output = [(fd, data.encode("latin-1")) for fd, data in record["output"]]
            status = record["status"]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):  # none yet, or not one of ours
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for eviction
        return output, status

    def _run_path(self, key: str) -> Path:
        return self._entries / f"{_RUN_RECORD}{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def finish(self) -> list[str]:
        """End the run: evict old entries if this run stored any, remember the installed
        versions looked up; the run's warnings."""
        if self._stored:
            self._evict()
        if "_installed" in self.__dict__ and self._usable() and self._entries.is_dir():
            with contextlib.suppress(OSError):
                self._installed.save()
        return self.warnings

    @functools.cached_property
    def _installed(self) -> "_Installed":
        return _Installed(self._entries)

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
                    from rflint.core.errors import describe_os_error

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

    def _content_hash(self, file: str, recorded: tuple[tuple | None, str] | None = None) -> str | None:
        """sha256 of the content, ABSENT for a missing file, None if it cannot be read.

        ``recorded`` is a (status, hash) pair an earlier run stored: while the file's status
        is still that one, so is its content, and it is not read.
        """
        if file in self._hashes:
            return self._hashes[file]
        read_at = time.time_ns()
        status = None
        try:
            status = _status(file)
            if recorded is not None and recorded[0] == status:
                digest = recorded[1]
            else:
                digest = hashlib.sha256(Path(file).read_bytes()).hexdigest()
        except FileNotFoundError:
            digest = ABSENT
        except OSError:
            digest = None
        self._hashes[file] = digest
        if status is not None and digest not in (ABSENT, None) and _settled(status[3:], read_at):
            self._statuses[file] = status
        return digest

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
        from rflint.core.diagnostics import FileReport

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
                    elif path.name.startswith(_RECORDS) and now - status.st_mtime > self.max_age_days * 86400:
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
    import shutil

    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _status(file: str) -> tuple[int, ...]:
    """What changes whenever the content may have: ctime moves with every write and with
    ``touch``, and cannot be set back as mtime can; a replaced file has a new inode."""
    status = os.stat(file)
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


class _Installed:
    """Installed distributions' versions, and the distributions providing each top-level
    module, remembered in the cache folder per interpreter and ``sys.path``.

    importlib.metadata scans the environment for each of them: a few ms per version and
    0.2-0.4 s for the module map, against 0.1 s for a whole warm run. The record holds
    while the metadata importlib.metadata reads is the same: the same ``.dist-info`` and
    ``.egg-info`` entries in each ``sys.path`` folder (installing, upgrading or removing a
    distribution adds or renames one), each metadata file with the same mtime. It is only
    saved while those mtimes are older than the timestamp granularity (else an edit in the
    same tick could leave them unchanged).
    """

    def __init__(self, folder: Path):
        identity = json.dumps([sys.executable, sys.path]).encode()
        self.path = folder / f"{_INSTALLED_RECORD}{hashlib.sha256(identity).hexdigest()[:32]}.json"
        self._checked_at = time.time_ns()
        self._inventory = _distribution_inventory()
        self._versions: dict[str, str | None] = {}
        self._modules: dict[str, list[str]] | None = None
        self._changed = False
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(self.path.read_bytes())
            if isinstance(record, dict) and record.get("inventory") == self._inventory:
                versions, modules = record.get("versions"), record.get("modules")
                self._versions = versions if isinstance(versions, dict) else {}
                self._modules = modules if isinstance(modules, dict) else None

    def version(self, distribution: str) -> str | None:
        if distribution not in self._versions:
            from importlib.metadata import PackageNotFoundError, version

            try:
                self._versions[distribution] = version(distribution)
            except PackageNotFoundError:
                self._versions[distribution] = None
            self._changed = True
        return self._versions[distribution]

    def providing(self, top_level: str) -> list[str]:
        """The installed distributions providing the top-level module ``top_level``."""
        if self._modules is None:
            from importlib.metadata import packages_distributions

            self._modules = packages_distributions()
            self._changed = True
        return self._modules.get(top_level, [])

    def save(self) -> None:
        mtimes = [mtime for _, listing in self._inventory for _, mtime in listing]
        if self._changed and _settled(mtimes, self._checked_at):
            record = {"inventory": self._inventory, "versions": self._versions, "modules": self._modules}
            write_file_atomically(self.path, json.dumps(record, sort_keys=True).encode())
            self._changed = False


def _settled(times, now_ns: int) -> bool:
    """Whether timestamps are old enough that the next change is bound to move them: one
    within the file system's granularity of ``now_ns`` may stay the same through an edit."""
    return all(t is None or t < now_ns - RACY_NS for t in times)


_METADATA_FILES = {".dist-info": "METADATA", ".egg-info": "PKG-INFO"}


def _distribution_inventory() -> list:
    """Per ``sys.path`` entry, its distributions' metadata as [name, mtime] pairs, sorted;
    an entry that is not a folder (a zip) is [[its name, its mtime]]. JSON-shaped (lists),
    to compare with a stored record."""
    inventory = []
    for entry in sys.path:
        folder = entry or "."
        try:
            names = sorted(name for name in os.listdir(folder) if name.endswith(tuple(_METADATA_FILES)))
        except OSError:
            inventory.append([entry, [[entry, _mtime_ns(folder)]]])
            continue
        listing = []
        for name in names:
            path = os.path.join(folder, name)
            metadata = os.path.join(path, _METADATA_FILES[os.path.splitext(name)[1]])
            listing.append([name, _mtime_ns(metadata) or _mtime_ns(path)])  # an .egg-info may be the file itself
        inventory.append([entry, listing])
    return inventory


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _environment_digest(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value_digest(value)


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write a temporary file and rename it: concurrent runs see the old or the new file, never half."""
    import tempfile

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
    import shutil

    shutil.rmtree(folder)
