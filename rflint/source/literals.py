"""Literal provenance: integer literals that remember where they were written.

rflint imports the model files it analyzes with every integer literal replaced by a
``LiteralInt``, an ``int`` that carries the ``Origin`` of its source text. Values flow
unchanged through assignments, defaults, ``functools.partial``, config tuples and
``_pair``, so for a layer built deep inside a model rflint can name the literal that set
its stride and rewrite exactly that text. Arithmetic yields plain ints: a derived value has
no single literal to blame.

Known differences from plain ints, all about the object rather than its value:
``type(v) is int`` is False for a bare literal, ``is`` between equal literals is False (each
literal is its own object), ``operator.index``/``int()`` return plain ints, and ``marshal``
rejects LiteralInt. Equality, hashing, ``repr``/``str``/``format`` and ``json`` are those of int.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
import uuid
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

TABLE_NAME = "__rflint_literals__"  # a dunder, so class bodies do not name-mangle it


@dataclass(frozen=True)
class Origin:
    """Where a literal was written: 1-based lines and 1-based columns counted in characters.

    ``end_column`` is exclusive (one past the last character), so on a single line the
    literal is ``line_text[column - 1:end_column - 1]``.
    """

    file: str
    line: int
    column: int
    end_line: int
    end_column: int


class LiteralInt(int):
    """An int that remembers the literal it came from; everything but identity behaves as int."""

    origin: Origin

    def __new__(cls, value: int, origin: Origin) -> LiteralInt:
        self = super().__new__(cls, value)
        self.origin = origin
        return self

    def __reduce__(self):
        # Pickles (torch.save, multiprocessing) must not depend on rflint being importable.
        return int, (int(self),)

    def __copy__(self) -> LiteralInt:
        return self

    def __deepcopy__(self, memo: dict) -> LiteralInt:
        # Immutable, and models deep-copy their layers (e.g. cloned blocks): keep the origin.
        return self


def origin_of(value: object) -> Origin | None:
    """The literal ``value`` was written as, or None for computed and uninstrumented values."""
    return value.origin if isinstance(value, LiteralInt) else None


# Fields whose expressions are never evaluated as written: a subscript is illegal in a
# match pattern, and ``from __future__ import annotations`` turns annotations into their
# source text, which must not become ``__rflint_literals__[0]``.
_UNEVALUATED_FIELDS: dict[type, tuple[str, ...]] = {
    ast.match_case: ("pattern",),
    ast.arg: ("annotation",),
    ast.AnnAssign: ("annotation",),
    ast.FunctionDef: ("returns",),
    ast.AsyncFunctionDef: ("returns",),
}


class _LiteralRewriter(ast.NodeTransformer):
    """Replaces each int literal by a lookup into the table of LiteralInts it collects."""

    def __init__(self, filename: str, source: str, overrides: Mapping[tuple[int, int], int]):
        # The tokenizer ends lines at \r\n, \r and \n only (unlike str.splitlines).
        self.lines = re.split(r"\r\n|\r|\n", source)
        self.filename = filename
        self.overrides = overrides
        self.unused_overrides = set(overrides)
        self.table: list[LiteralInt] = []

    def _column(self, line: int, byte_offset: int) -> int:
        """ast offsets count UTF-8 bytes; Origin counts characters."""
        return len(self.lines[line - 1].encode()[:byte_offset].decode()) + 1

    def generic_visit(self, node: ast.AST) -> ast.AST:
        """NodeTransformer's, minus the unevaluated fields (visits here only ever replace a node)."""
        skipped = _UNEVALUATED_FIELDS.get(type(node), ())
        for field, value in ast.iter_fields(node):
            if field in skipped:
                continue
            if isinstance(value, list):
                value[:] = [self.visit(item) if isinstance(item, ast.AST) else item for item in value]
            elif isinstance(value, ast.AST):
                setattr(node, field, self.visit(value))
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        if type(node.value) is not int:  # bool, float, str, None, ... stay as they are
            return node
        origin = Origin(
            self.filename,
            node.lineno,
            self._column(node.lineno, node.col_offset),
            node.end_lineno,
            self._column(node.end_lineno, node.end_col_offset),
        )
        position = (origin.line, origin.column)
        self.unused_overrides.discard(position)
        self.table.append(LiteralInt(self.overrides.get(position, node.value), origin))
        lookup = ast.Subscript(
            value=ast.Name(id=TABLE_NAME, ctx=ast.Load()),
            slice=ast.Constant(value=len(self.table) - 1),
            ctx=ast.Load(),
        )
        return ast.fix_missing_locations(ast.copy_location(lookup, node))


def rewrite_literals(
    tree: ast.Module,
    filename: str,
    source: str,
    overrides: Mapping[tuple[int, int], int] | None = None,
) -> tuple[ast.Module, tuple[LiteralInt, ...]]:
    """Rewrite ``tree`` (parsed from ``source``) in place; return it and the literal table.

    The literal at ``(line, column)`` of ``overrides`` takes the mapped value but keeps its
    origin. A position that is not an instrumented literal raises ValueError rather than
    silently building an unchanged program.
    """
    rewriter = _LiteralRewriter(filename, source, overrides or {})
    rewriter.visit(tree)
    if rewriter.unused_overrides:
        raise ValueError(f"no integer literal at {sorted(rewriter.unused_overrides)} in {filename}")
    return tree, tuple(rewriter.table)


def _first_statement_index(tree: ast.Module) -> int:
    """Where code can run first: after the docstring and the ``__future__`` imports."""
    index = 0 if ast.get_docstring(tree, clean=False) is None else 1
    for statement in tree.body[index:]:
        if not (isinstance(statement, ast.ImportFrom) and statement.module == "__future__"):
            break
        index += 1
    return index


def instrument(
    source: str,
    filename: str,
    overrides: Mapping[tuple[int, int], int] | None = None,
) -> types.CodeType:
    """Compile ``source`` with every evaluated int literal turned into a LiteralInt.

    The returned code is self-contained: its first statement binds the literal table to
    ``__rflint_literals__`` in the executing globals, so a plain ``exec(code, namespace)``
    (or any loader's ``exec_module``) runs it. ``filename`` is recorded verbatim in each
    Origin; ``overrides`` is as for ``rewrite_literals``.
    """
    tree, table = rewrite_literals(ast.parse(source, filename), filename, source, overrides)
    # The compiler only accepts exact ints as constants, so the table enters the code
    # object afterwards, in place of a placeholder string no program contains.
    placeholder = f"{TABLE_NAME}:{uuid.uuid4().hex}"
    bind_table = ast.Assign(
        targets=[ast.Name(id=TABLE_NAME, ctx=ast.Store())],
        value=ast.Constant(value=placeholder),
        lineno=1,
        col_offset=0,
    )
    tree.body.insert(_first_statement_index(tree), ast.fix_missing_locations(bind_table))
    code = compile(tree, filename, "exec", dont_inherit=True)
    consts = [table if type(const) is str and const == placeholder else const for const in code.co_consts]
    return code.replace(co_consts=tuple(consts))


class _InstrumentingLoader(importlib.machinery.SourceFileLoader):
    """Compiles from source on every import and never touches ``__pycache__``: cached
    bytecode would be uninstrumented, or instrumented with other overrides."""

    def __init__(self, fullname: str, path: str, overrides: Mapping[tuple[int, int], int]):
        super().__init__(fullname, path)
        self.overrides = overrides

    def get_code(self, fullname: str) -> types.CodeType:
        if _pinned is None:
            data = self.get_data(self.path)
        elif self.path in _pinned:
            data = _pinned[self.path]
        else:
            data = _pinned[self.path] = self.get_data(self.path)
        return _instrumented(importlib.util.decode_source(data), self.path, frozenset(self.overrides.items()))


_pinned: dict[str, bytes] | None = None  # file -> the bytes first imported, once pinning is on


def pin_imported_sources() -> None:
    """From now on this process imports each analyzed file from the bytes it first read.

    A worker's fix trials must rebuild the program its analysis saw, even if an editor saved
    the file in between; the fix is keyed to those bytes (``imported_sha256``), so --fix
    then refuses to write the file instead of rewriting whatever literal sits there now."""
    global _pinned
    if _pinned is None:
        _pinned = {}


def imported_sha256(path: str) -> str | None:
    """The sha256 of the pinned bytes of analyzed ``path``, or None if none are pinned."""
    data = (_pinned or {}).get(os.path.abspath(path))
    return None if data is None else hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=512)
def _instrumented(source: str, filename: str, overrides: frozenset) -> types.CodeType:
    """``instrument``, once per text and overrides: a fix trial re-imports a whole package
    to change one literal, and only that file's code differs (its literals are immutable)."""
    return instrument(source, filename, dict(overrides))


class InstrumentingFinder(importlib.abc.MetaPathFinder):
    """Imports the analyzed files instrumented and leaves every other module to the usual finders.

    ``overrides`` maps ``(file, line, column)`` of a literal in an analyzed file to the
    value it should evaluate to. Paths are compared, and recorded in origins, as
    ``os.path.abspath`` gives them (not resolving symlinks, so users see their own paths).
    """

    def __init__(
        self,
        files: Iterable[str | os.PathLike],
        overrides: Mapping[tuple[str, int, int], int] | None = None,
    ):
        self.files = frozenset(map(os.path.abspath, files))
        self.overrides: dict[str, dict[tuple[int, int], int]] = {}
        for (file, line, column), value in (overrides or {}).items():
            self.overrides.setdefault(os.path.abspath(file), {})[line, column] = value
        if not self.overrides.keys() <= self.files:
            unanalyzed = sorted(self.overrides.keys() - self.files)
            raise ValueError(f"overrides for files that are not analyzed: {unanalyzed}")

    def spec_for_file(self, fullname: str, file: str) -> importlib.machinery.ModuleSpec:
        """A spec importing analyzed ``file`` as module ``fullname`` (a package if ``__init__.py``)."""
        file = os.path.abspath(file)
        loader = _InstrumentingLoader(fullname, file, self.overrides.get(file, {}))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)

    def find_spec(self, fullname, path, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or os.path.abspath(spec.origin) not in self.files:
            return None
        return self.spec_for_file(fullname, spec.origin)


@contextlib.contextmanager
def instrumented_imports(
    files: Iterable[str | os.PathLike],
    overrides: Mapping[tuple[str, int, int], int] | None = None,
) -> Iterator[InstrumentingFinder]:
    """Within the block, imports of ``files`` not already in ``sys.modules`` are instrumented."""
    finder = InstrumentingFinder(files, overrides)
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)


def import_root(path: str) -> tuple[str, list[str]]:
    """The ``sys.path`` entry for ``path`` and its dotted-name parts, climbing the folders
    that hold an ``__init__.py``. A file in folders without one below the working directory
    is a module of namespace packages, as under ``python -m``; another standalone file gets
    no parts."""
    folder, filename = os.path.split(path)
    if not os.path.isfile(os.path.join(folder, "__init__.py")):
        return _namespace_root(path) or (folder, [])
    stem = os.path.splitext(filename)[0]
    parts = [] if stem == "__init__" else [stem]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        parts.insert(0, package)
    return folder, parts


def _namespace_root(path: str) -> tuple[str, list[str]] | None:
    """``(cwd, ["ns", "models", "net"])`` for ``cwd/ns/models/net.py``, unless a name is not
    an identifier or the top name is taken by a module that is not a namespace package
    (``python -m`` would import that one)."""
    cwd = os.getcwd()
    relative = os.path.relpath(path, cwd)
    parts = relative[:-len(".py")].split(os.sep) if relative.endswith(".py") else []
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return None
    try:
        taken = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    if taken is not None and taken.origin is not None:
        return None
    return cwd, parts


def _forget_stale_modules(analyzed: frozenset[str], top_name: str, top_file: str) -> None:
    """Drop modules that would be reused instead of imported afresh: the analyzed files (they
    must run instrumented, with the current overrides) and a different package already
    imported under our top-level name (e.g. a same-named package from another folder)."""
    top = sys.modules.get(top_name)
    imported_top_file = getattr(top, "__file__", None)
    same_top = imported_top_file is not None and os.path.abspath(imported_top_file) == top_file
    foreign_top = top is not None and not same_top
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        in_top_package = name == top_name or name.startswith(top_name + ".")
        if (file and os.path.abspath(file) in analyzed) or (foreign_top and in_top_package):
            del sys.modules[name]


def import_file(
    path: str | os.PathLike,
    files: Iterable[str | os.PathLike],
    overrides: Mapping[tuple[str, int, int], int] | None = None,
    fresh: bool = True,
) -> types.ModuleType:
    """Import analyzed ``path`` (it need not be listed in ``files``) instrumented, afresh.

    A file inside packages is imported under its dotted name, with the topmost folder
    lacking ``__init__.py`` put first on ``sys.path`` (and left there: models import lazily)
    so relative imports work; so is a file of namespace packages (folders without
    ``__init__.py`` below the working directory), with the working directory as that folder.
    A standalone file's folder (and a namespace module's) goes on ``sys.path`` too, for its
    sibling imports; a standalone file gets a unique name so same-named files never collide.
    Already imported analyzed modules are dropped from ``sys.modules`` and re-executed,
    unless ``fresh`` is False: a worker linting many files of one package then imports
    (and instruments) each module once.
    """
    path = os.path.abspath(path)
    root, parts = import_root(path)
    if parts:
        name = ".".join(parts)
        top_file = os.path.join(root, parts[0], "__init__.py")
    else:
        stem = os.path.splitext(os.path.basename(path))[0]
        name = f"rflint_standalone_{stem}_{hashlib.sha1(path.encode()).hexdigest()[:12]}"
        top_file = path
    if not fresh and getattr(sys.modules.get(name), "__file__", None) == path:
        return sys.modules[name]
    in_package = os.path.isfile(os.path.join(os.path.dirname(path), "__init__.py"))
    roots = [root] if in_package else [root, os.path.dirname(path)]
    sys.path[:] = [*dict.fromkeys(roots), *(entry for entry in sys.path if entry not in roots)]
    importlib.invalidate_caches()  # files written moments ago must be seen
    with instrumented_imports([*files, path], overrides) as finder:
        _forget_stale_modules(finder.files if fresh else frozenset(), name.partition(".")[0], top_file)
        if parts:
            return importlib.import_module(name)
        spec = finder.spec_for_file(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses, pickle and typing look modules up by name
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module


def import_package(folder: str, files: Iterable[str | os.PathLike]) -> types.ModuleType:
    """``import pkg`` for the package at ``folder``, as the import of any of its modules
    starts: its ``__init__`` runs as usual, analyzed ``files`` among what it imports run
    instrumented."""
    parent, name = os.path.split(os.path.abspath(folder))
    sys.path[:] = [parent, *(entry for entry in sys.path if entry != parent)]
    with instrumented_imports(files):
        return importlib.import_module(name)


def package_siblings(file: str) -> frozenset[str]:
    """The file and, inside a package, the other modules of its folder: re-importing one
    module of a package alone would meet its siblings' registries (torchvision's
    ``register_model`` refuses a second registration)."""
    folder = os.path.dirname(os.path.abspath(file))
    if not os.path.exists(os.path.join(folder, "__init__.py")):
        return frozenset([os.path.abspath(file)])
    return frozenset(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".py"))
