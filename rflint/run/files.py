"""Which files to lint: the ``.py`` files (and the files of other front ends, see
``file_kinds``: graph ``.json`` files) under the given paths, minus excluded ones.

Follows ruff: ``exclude``/``extend-exclude`` globs prune folders and files found while
walking, but a path named on the command line is linted anyway unless ``--force-exclude``
(pre-commit names every file, so its hook passes ``--force-exclude``). Torch-free.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from rflint.run.config import Settings, matches_any
from rflint.run.file_kinds import has_known_suffix, wanted_while_walking


class UsageError(FileNotFoundError):
    """A path on the command line that does not exist; the CLI exits 2."""


def discover(
    paths: list[str], settings: Settings, force_exclude: bool, infos: list[str] | None = None
) -> tuple[list[Path], list[str]]:
    """The files to lint, sorted and without duplicates, and the folders that could not be read.

    FIFOs, sockets and devices are not linted (opening a FIFO waits for a writer forever):
    each is named in ``infos``.

    A file named in ``paths`` is linted whatever its extension and, unless ``force_exclude``,
    even if excluded; only folders found while walking skip hidden and venv folders. Folders are walked recursively, skipping hidden folders, virtualenvs (a ``pyvenv.cfg``),
    ``__pycache__`` and excluded paths. Symlinked folders are followed, after the real
    folders, and only into folders not visited yet, so links never loop and a file keeps
    its real path when it is reachable both ways.
    """
    for given in paths:
        if not os.path.exists(given):
            raise UsageError(f"path '{given}' does not exist")
    patterns = settings.exclude + settings.extend_exclude
    named = [Path(given) for given in paths if not (force_exclude and _named_path_excluded(Path(given), patterns, settings.root))]
    errors: list[str] = []
    infos = [] if infos is None else infos
    found = [path for path in named if not path.is_dir() and _regular(path, infos)]
    found += _walk([path for path in named if path.is_dir()], patterns, settings.root, errors, infos)
    unique: dict[str, Path] = {}
    real = real_paths(map(str, found))
    for path in found:
        unique.setdefault(real[str(path)], path)
    return sorted(unique.values()), errors


def real_paths(files: Iterable[str]) -> dict[str, str]:
    """``os.path.realpath`` of each file, each folder resolved once: the same answer, as
    only the file's own name is then left to check for a symlink. realpath checks every
    component of every path, 0.17 ms a file in site-packages (a sixth of a warm run)."""
    folders: dict[str, str] = {}
    real = {}
    for file in files:
        folder, name = os.path.split(file)
        if folder not in folders:
            folders[folder] = os.path.realpath(folder or os.curdir)
        path = os.path.join(folders[folder], name)
        real[file] = os.path.realpath(path) if os.path.islink(path) else path
    return real


def _regular(path: Path, infos: list[str]) -> bool:
    """A regular file (after symlinks); else says what it is in ``infos``."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # a dangling symlink found while walking
        return False
    if stat.S_ISREG(mode):
        return True
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device"}
    kind = next((name for test, name in kinds.items() if test(mode)), "not a regular file")
    infos.append(f"{path}: skipped: {kind}")
    return False


def _walk(folders: list[Path], patterns: tuple[str, ...], root: Path, errors: list[str], infos: list[str]) -> list[Path]:
    real_folders = [folder for folder in folders if not folder.is_symlink()]
    linked_folders = [folder for folder in folders if folder.is_symlink()]
    visited: set[Path] = set()
    files = []
    while real_folders or linked_folders:
        folder = real_folders.pop() if real_folders else linked_folders.pop(0)
        resolved = folder.resolve()
        if resolved in visited:
            continue
        visited.add(resolved)
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            errors.append(f"{folder}: cannot read folder: {error.strerror}")
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir():
                if not _skipped_folder(path, patterns, root):
                    (linked_folders if entry.is_symlink() else real_folders).append(path)
            elif (has_known_suffix(path) and not matches_any(path, patterns, root) and _regular(path, infos)
                  and wanted_while_walking(path)):  # a FIFO is never opened to see whether it is a graph
                files.append(path)
    return files


def _skipped_folder(folder: Path, patterns: tuple[str, ...], root: Path) -> bool:
    """Folders that never hold the project's models, whatever ``exclude`` says, plus excluded ones."""
    return (
        folder.name.startswith(".")
        or folder.name == "__pycache__"
        or (folder / "pyvenv.cfg").exists()
        or matches_any(folder, patterns, root)
    )


def _named_path_excluded(path: Path, patterns: tuple[str, ...], root: Path) -> bool:
    """With ``--force-exclude``: the path or a folder above it (below ``root``) is excluded."""
    absolute = Path(os.path.abspath(path))
    inside_root = [absolute, *(parent for parent in absolute.parents if root in parent.parents)]
    return any(matches_any(candidate, patterns, root) for candidate in inside_root)
