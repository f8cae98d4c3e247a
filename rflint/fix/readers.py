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

from rflint.frontends.torch.analysis import analyze
from rflint.frontends.torch.build import build
from rflint.frontends.discover import ModelEntry, find_models, with_configured
from rflint.source.importers import importers
from rflint.source.literals import import_file, origin_of
from rflint.core.layers import Site
from rflint.core.result import Result

Position = tuple[str, int, int]  # (file, line, column) of a literal


def position(site: Site) -> Position:
    return site.file, site.line, site.column


@dataclass
class Reader:
    """A model and the literals it reads; ``result`` is None when it was not analysed (it
    reads no candidate literal) or cannot be (RF903: it has no RF003, so must not change)."""

    entry: ModelEntry
    reads: frozenset[Position]
    result: Result | None
    components: frozenset[str] = frozenset()
    analysed: bool = False

    @property
    def needs_fix(self) -> bool:
        return self.result is not None and not self.result.fully_utilized()


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


_DISCOVERED: dict[tuple[str, frozenset[str]], list[Reader]] = {}  # (file, instrumented) -> its built models


class Readers:
    """The models of a set of files, asked which read a literal.

    ``known`` are the models of the file being linted, with their analysis (None: built but
    not analysable). The models of the other ``files`` are found by importing them with
    provenance for ``instrumented`` and built once per process; the ones reading one of
    ``positions`` (the candidates' literals) are analysed."""

    def __init__(self, files: Iterable[str], instrumented: frozenset[str], positions: frozenset[Position],
                 resolution_for: Callable[[ModelEntry], object],
                 known: Sequence[tuple[ModelEntry, Result | None]] = (),
                 explicit: dict | None = None, progress: Callable[[str], None] | None = None):
        self.instrumented = instrumented
        self.resolution_for = resolution_for
        self.progress = progress
        readers = [Reader(e, layer_reads(r), r, r.component_types, True) if r is not None else self._built(e)
                   for e, r in known]
        fresh = True  # the first import re-executes the instrumented files; the others reuse them
        for file in sorted(set(files) - {entry.file for entry, _ in known}):
            if (file, instrumented) not in _DISCOVERED:
                _DISCOVERED[file, instrumented] = self._discover(file, fresh, (explicit or {}).get(file, ()))
                fresh = False
            readers += _DISCOVERED[file, instrumented]
        readers = [reader for reader in readers if reader is not None]
        blocks = {c for reader in readers for c in reader.components if c != reader.entry.type_name}
        self.readers = [reader for reader in readers if reader.entry.type_name not in blocks]
        for reader in self.readers:
            if not reader.analysed and reader.reads & positions:
                self._analyse(reader)

    def of(self, positions: Iterable[Position], besides: ModelEntry) -> list[Reader]:
        """The models other than ``besides`` that read one of ``positions``."""
        wanted = set(positions)
        return [r for r in self.readers if r.reads & wanted
                and (r.entry.file, r.entry.name) != (besides.file, besides.name)]

    def _discover(self, file: str, fresh: bool, explicit) -> list[Reader]:
        """The models of ``file``, built; a file that does not import is skipped (a fix
        cannot break it: it is broken already)."""
        try:
            module = import_file(file, self.instrumented, fresh=fresh)
            with open(file, encoding="utf-8", errors="replace") as handle:
                source = handle.read()
            entries, _ = find_models(module, file, source)
            entries = with_configured(entries, module, file, source, explicit, [])
        except (Exception, SystemExit):
            return []
        return [reader for entry in entries if (reader := self._built(entry)) is not None]

    def _built(self, entry: ModelEntry) -> Reader | None:
        """``entry`` built, with the literals its modules hold; None when it does not build
        (a fix cannot break it). Every model is kept for its classes: a class that is a block
        of another model is not a model of its own."""
        if self.progress:
            self.progress(f"{entry.name} (does it read the fix's literals?)")
        try:
            built = build(entry.factory(), self.instrumented)
        except (Exception, SystemExit):
            return None
        return Reader(entry, module_reads(built.model), None, built.component_types)

    def _analyse(self, reader: Reader) -> None:
        """Analyse a model reading a candidate literal: does it have an RF003 of its own?"""
        input_res, _ = self.resolution_for(reader.entry)
        if self.progress:
            self.progress(f"{reader.entry.name} (does it have an RF003 of its own?)")
        reader.analysed = True
        try:
            result = analyze(reader.entry.factory(), input_res, name=reader.entry.name,
                             analyzed_files=self.instrumented)
        except (Exception, SystemExit):  # RF903: built, not analysable, so no RF003 to fix
            return
        reader.result, reader.reads = result, reader.reads | layer_reads(result)
