"""Graph files: a declared graph in its JSON form, linted like a model file.

Tools in other languages (a NAS search, an exporter) write the graph as JSON
(``docs/graph-format.md``) and get rflint's diagnostics back, pointing at each layer's
``"name"`` in the file (line:col). Python's ``json`` keeps no positions, so the file is
decoded by ``json`` (which says where the syntax is wrong) and then scanned once more for
the offset of every value. Runs in the rflint process itself: reading JSON runs no user
code, so it needs neither a worker nor torch.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import re
from json.decoder import scanstring
from typing import Sequence

from rflint.frontends.declared.graph import FORMAT, Graph, GraphSpecError
from rflint.core.diagnostics import Diagnostic, FileReport, ModelReport
from rflint.core.noqa import ALL, covers
from rflint.core.layers import Site
from rflint.core.resolution import as_resolution

_SPACE = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null|NaN|-?Infinity")
_MARKER = f'"{FORMAT}"'.encode()
MAX_SNIFF_BYTES = 64 << 20  # a bigger .json found in a folder is data, not an architecture


def is_graph_file(path) -> bool:
    """Whether a ``.json`` found while walking a folder is a graph file (it names the
    format), so that package.json and data files in the tree are left alone."""
    try:
        with open(path, "rb") as handle:
            return _MARKER in handle.read(MAX_SNIFF_BYTES)
    except OSError:
        return False


class Located:
    """A decoded JSON document and where each of its values starts and ends in the text."""

    def __init__(self, text: str):
        self.text = text
        self.value = json.loads(text)
        self.spans: dict[tuple, tuple[int, int]] = {}  # path -> (start, end) offsets of the value
        self.keys: dict[tuple, int] = {}  # path -> offset of the key naming it
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._scan(_SPACE.match(text, 0).end(), ())

    def _scan(self, pos: int, path: tuple) -> int:
        """Record the span of the value at ``pos`` and of everything inside it; return its end."""
        text, start = self.text, pos
        if text[pos] in "{[":
            closing, index = ("}" if text[pos] == "{" else "]"), 0
            pos = _SPACE.match(text, pos + 1).end()
            while text[pos] != closing:
                if closing == "}":
                    key, after = scanstring(text, pos + 1)
                    self.keys[(*path, key)] = pos
                    pos = _SPACE.match(text, after).end() + 1  # the colon
                    child = (*path, key)
                else:
                    child, index = (*path, index), index + 1
                pos = _SPACE.match(text, self._scan(_SPACE.match(text, pos).end(), child)).end()
                if text[pos] == ",":
                    pos = _SPACE.match(text, pos + 1).end()
            end = pos + 1
        elif text[pos] == '"':
            end = scanstring(text, pos + 1)[1]
        else:
            end = _SCALAR.match(text, pos).end()
        self.spans[path] = (start, end)
        return end

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and character column of an offset."""
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def site(self, file: str, path: tuple) -> Site | None:
        """The span of the value at ``path``, or None if the document has no such value."""
        if path not in self.spans:
            return None
        start, end = self.spans[path]
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Site(file, line, column, end_line, end_column)

    def nearest_site(self, file: str, path: tuple, at_key: bool = False) -> Site:
        """Where to point for a wrong field: its key if the key is what is wrong, else its
        value, else the closest enclosing value that exists (a missing field: its object)."""
        if at_key and path in self.keys:
            start = self.keys[path]
            end = scanstring(self.text, start + 1)[1]
            return Site(file, *self.position(start), *self.position(end))
        for depth in range(len(path), -1, -1):
            site = self.site(file, path[:depth])
            if site is not None:
                return site
        return Site(file, 1, 1, 1, 1)


def layer_sites(document: Located, file: str) -> dict[tuple, Site]:
    """Where each layer and the graph are named: diagnostics point there."""
    sites = {path: document.site(file, path) for path in (("name",), ())}
    layers = document.value.get("layers") if isinstance(document.value, dict) else None
    for index in range(len(layers) if isinstance(layers, list) else 0):
        for path in (("layers", index, "name"), ("layers", index)):
            sites[path] = document.site(file, path)
    return {path: site for path, site in sites.items() if site is not None}


def read_graph(file: str) -> tuple[Graph, Located]:
    """The graph a file declares; raises ``GraphFileError`` with the place and the reason."""
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise GraphFileError(Site(file, 1, 1, 1, 1), f"not UTF-8: byte {error.object[error.start]:#x} "
                                                      f"at offset {error.start}") from None
    try:
        document = Located(text)
    except json.JSONDecodeError as error:
        raise GraphFileError(Site(file, error.lineno, error.colno, error.lineno, error.colno),
                             f"not valid JSON: {error.msg}") from None
    except RecursionError:
        raise GraphFileError(Site(file, 1, 1, 1, 1), "not a graph: JSON nested too deeply") from None
    try:
        return Graph.from_dict(document.value, sites=layer_sites(document, file)), document
    except GraphSpecError as error:
        raise GraphFileError(document.nearest_site(file, error.path, error.unknown_key), str(error)) from None


class GraphFileError(ValueError):
    def __init__(self, site: Site, reason: str):
        super().__init__(reason)
        self.site = site


def lint_graph_file(file: str, job) -> FileReport:
    """A FileReport like a worker's for a Python file: one model, or one RF901 line."""
    report = FileReport(file, imported_files=(file,))
    try:
        graph, document = read_graph(file)
    except (GraphFileError, OSError) as error:
        site = getattr(error, "site", Site(file, 1, 1, 1, 1))
        reason = error.strerror if isinstance(error, OSError) else str(error)
        report.diagnostics.append(Diagnostic("RF901", f"cannot read graph: {reason}", file, site.line, site.column,
                                             site.end_line, site.end_column, ()))
        return report
    report.hashes = {file: hashlib.sha256(document.text.encode()).hexdigest()}
    site = graph.site
    model = ModelReport(graph.name, file, site.line, site.column, (), kind="graph")
    if job.input_res_auto and graph.input_res is not None:
        res, model.input_res_source = graph.input_res, "model"
    else:
        res, model.input_res_source = job.input_res, "option"
    try:
        model.input_res = as_resolution(res, graph.ndim)
    except ValueError as error:  # "DxHxW" for a 2-D graph
        model.status, model.error, model.input_res = "error", f"RF903: cannot analyze: {error}", ()
        report.models.append(model)
        return report
    model.result = graph.analyze(model.input_res)
    model.keep_reported_layers()
    report.models.append(model)
    return report


def suppressed(diagnostic: Diagnostic, lines: Sequence[str]) -> bool:
    """A graph file has no comments: a ``"noqa"`` field on the graph covers every diagnostic
    of the file, one on a layer covers the diagnostics pointing at that layer."""
    graph_noqa, layer_noqa = _suppressions("\n".join(lines), diagnostic.file)
    if graph_noqa is not None and covers(_codes(graph_noqa), diagnostic.code):
        return True
    codes = layer_noqa.get((diagnostic.line, diagnostic.column))
    return codes is not None and covers(_codes(codes), diagnostic.code)


@functools.lru_cache(maxsize=64)
def _suppressions(text: str, file: str) -> tuple:
    """(the graph's noqa, {(line, column) of a layer's name: its noqa}) of a file's text."""
    try:
        document = Located(text)
        graph = Graph.from_dict(document.value, sites=layer_sites(document, file))
    except (ValueError, RecursionError):  # reported as RF901 already
        return None, {}
    layers = {(layer.site.line, layer.site.column): layer.noqa for layer in graph.layers
              if layer.noqa is not None and layer.site is not None}
    return graph.noqa, layers


def _codes(noqa):
    return ALL if noqa is True else noqa
