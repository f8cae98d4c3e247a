"""Every model that reads a literal, wherever it is defined.

A fix rewrites a literal, so it changes every model built from it: the other models of the
file (EfficientNet B0..B7 share one table), and models in other files that import it
(torchvision's detection models build MobileNetV3 from its table). Those files are found
statically (``importers``), imported with literal provenance, and their models built once:
the literals held by a model's modules (a conv's ``stride``) say which it reads. A model
that reads a candidate's literal is then analysed, to know whether it has an RF003 of its
own (it may change) or not (it must not).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from torch import nn

from .analysis import analyze
from .build import build
from .discover import ModelEntry, find_models, with_configured
from .importers import importers
from .literals import import_file, origin_of
from .result import Result, Site

Position = tuple[str, int, int]  # (file, line, column) of a literal


def position(site: Site) -> Position:
    return site.file, site.line, site.column


@dataclass
class Reader:
    """A model and the literals it reads; ``result`` is None when it builds but cannot be
    analysed (RF903): it has no RF003, so a fix must not change it."""

    entry: ModelEntry
    reads: frozenset[Position]
    result: Result | None
    components: frozenset[str] = frozenset()

    @property
    def needs_fix(self) -> bool:
        return self.result is not None and not self.result.fully_utilized()

    def shown(self) -> str:
        """``name (file.py)``, and why it has no RF003 when it could not be analysed."""
        unanalysed = "" if self.result is not None else ", which builds but cannot be analysed"
        return f"{self.entry.name} ({os.path.basename(self.entry.file)}{unanalysed})"


def layer_reads(result: Result) -> frozenset[Position]:
    """The stride and kernel literals of a model's analysed layers."""
    return frozenset(position(s) for layer in result.layers
                     for s in (*layer.stride_literals, *layer.kernel_literals) if s is not None)


def module_reads(model: nn.Module) -> frozenset[Position]:
    """The literals held by the attributes of a model's modules (strides, kernel sizes, ...)."""
    found = set()
    for module in model.modules():
        for value in vars(module).values():
            for item in value if isinstance(value, (tuple, list)) else (value,):
                origin = origin_of(item)
                if origin is not None:
                    found.add((origin.file, origin.line, origin.column))
    return frozenset(found)


def reader_files(literal_files: Iterable[str]) -> frozenset[str]:
    """The files whose models may read a literal of ``literal_files``: those files and
    every project file that imports one of them."""
    files = set()
    for file in literal_files:
        files |= {os.path.abspath(file), *importers(file)}
    return frozenset(files)


class Readers:
    """The models of a set of files, discovered and built once, asked which read a literal.

    ``known`` are models already analysed (the file being linted); every other model of
    ``files`` is found by importing its file with provenance for ``instrumented``. A model
    is analysed only if it reads one of ``positions`` (the candidates' literals)."""

    def __init__(self, files: Iterable[str], instrumented: frozenset[str], positions: frozenset[Position],
                 resolution_for: Callable[[ModelEntry], object],
                 known: Sequence[tuple[ModelEntry, Result | None]] = (),
                 explicit: dict | None = None, progress: Callable[[str], None] | None = None):
        self.instrumented = instrumented
        self.positions = positions
        self.resolution_for = resolution_for
        self.progress = progress
        self.readers: list[Reader] = []
        known_files = {entry.file for entry, _ in known}
        for entry, result in known:
            reader = self._known(entry, result)
            if reader is not None:
                self.readers.append(reader)
        first = True
        for file in sorted(set(files) - known_files):
            self.readers += self._discover(file, fresh=first, explicit=(explicit or {}).get(file, ()))
            first = False
        blocks = {c for reader in self.readers for c in reader.components if c != reader.entry.type_name}
        self.readers = [reader for reader in self.readers if reader.entry.type_name not in blocks]

    def of(self, positions: Iterable[Position], besides: ModelEntry) -> list[Reader]:
        """The models other than ``besides`` that read one of ``positions``."""
        wanted = set(positions)
        return [r for r in self.readers if r.reads & wanted
                and (r.entry.file, r.entry.name) != (besides.file, besides.name)]

    def _known(self, entry: ModelEntry, result: Result | None) -> Reader | None:
        if result is not None:
            return Reader(entry, layer_reads(result), result, result.component_types)
        return self._analysed(entry)

    def _discover(self, file: str, fresh: bool, explicit) -> list[Reader]:
        """The readers among ``file``'s models; a file that does not import is skipped (it
        cannot be broken by a fix: it is broken already)."""
        try:
            module = import_file(file, self.instrumented, fresh=fresh)
            with open(file, encoding="utf-8", errors="replace") as handle:
                source = handle.read()
            entries, _ = find_models(module, file, source)
            entries = with_configured(entries, module, file, source, explicit, [])
        except (Exception, SystemExit):
            return []
        return [reader for entry in entries if (reader := self._analysed(entry)) is not None]

    def _analysed(self, entry: ModelEntry) -> Reader | None:
        """Build ``entry``, and analyse it if it reads a candidate literal; None when it does
        not build (a fix cannot break it). Models reading none are kept for their classes:
        a class that is a block of another model is not a model of its own."""
        if self.progress:
            self.progress(f"{entry.name} (does it read the fix's literals?)")
        try:
            built = build(entry.factory(), self.instrumented)
        except (Exception, SystemExit):
            return None
        reads = module_reads(built.model)
        if not reads & self.positions:
            return Reader(entry, reads, None, built.component_types)
        input_res, _ = self.resolution_for(entry)
        try:
            result = analyze(entry.factory(), input_res, name=entry.name, analyzed_files=self.instrumented)
        except (Exception, SystemExit):  # RF903: built, not analysable, so no RF003 to fix
            return Reader(entry, reads, None, built.component_types)
        return Reader(entry, reads | layer_reads(result), result, result.component_types)
