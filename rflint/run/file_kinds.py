"""Which front end reads a file: a small dispatch by file kind.

A kind says which files it takes (by suffix, and when several kinds share a suffix, by
looking inside: a Keras ``model.to_json()`` file and a graph file are both ``.json``),
whether a file found while walking a folder is one of its own, how it is linted, and how
its suppressions are read. Python model files are imported, so they run in worker
processes (``runner``, which imports torch); a kind with ``lint`` runs in the rflint
process itself and never imports torch, so a run over graph files alone stays torch-free.

A new front end (saved Keras models: ``.keras`` archives, Keras JSON) adds one ``FileKind``
to ``KINDS``. Torch-free; the front ends are imported only when a file of theirs is seen.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence


@dataclass(frozen=True)
class FileKind:
    name: str
    suffixes: tuple[str, ...]
    module: str  # the front end, imported on first use
    claims: str | None = None  # function(path) -> bool: a file of this suffix is one of ours
    lint: str | None = None  # function(file, job) -> FileReport, in-process; None: worker processes
    suppressed: str = "suppressed"  # function(diagnostic, lines of the file) -> bool

    def function(self, name: str) -> Callable:
        return getattr(importlib.import_module(self.module), name)

    def owns(self, path: Path) -> bool:
        return self.claims is None or self.function(self.claims)(path)


PYTHON = FileKind("python", (".py",), "rflint.core.noqa")
GRAPH = FileKind("graph", (".json",), "rflint.frontends.declared.file", claims="is_graph_file", lint="lint_graph_file")
KERAS_SAVED = FileKind("keras-saved", (".keras", ".json"), "rflint.frontends.keras.saved", claims="is_saved_keras_model",
                       lint="lint_saved_model")
KINDS = (GRAPH, KERAS_SAVED, PYTHON)


def kind_of(file: str | Path) -> FileKind:
    """The front end for a file: the kind of its suffix that claims it, else the first
    kind of that suffix (it will say what is wrong with the file), else Python (a file
    named on the command line is linted whatever its extension)."""
    suffix = Path(file).suffix.lower()
    candidates = [kind for kind in KINDS if suffix in kind.suffixes]
    if len(candidates) > 1:
        return next((kind for kind in candidates if kind.owns(Path(file))), candidates[0])
    return candidates[0] if candidates else PYTHON


def has_known_suffix(path: Path) -> bool:
    return any(path.suffix.lower() in kind.suffixes for kind in KINDS)


def wanted_while_walking(path: Path) -> bool:
    """A file found in a folder is linted if a kind takes its suffix and claims it."""
    suffix = path.suffix.lower()
    return any(suffix in kind.suffixes and kind.owns(path) for kind in KINDS)


def lint_in_process(files: Sequence[str], job) -> list:
    """FileReports of the files whose front end runs in this process."""
    reports = []
    for file in files:
        kind = kind_of(file)
        reports.append(kind.function(kind.lint)(file, job))
    return reports


def needs_worker(file: str) -> bool:
    return kind_of(file).lint is None


def suppressed(diagnostic, lines: Sequence[str]) -> bool:
    """Whether the file's own suppressions (noqa comments, noqa fields) cover a diagnostic."""
    kind = kind_of(diagnostic.file)
    return kind.function(kind.suppressed)(diagnostic, lines)
