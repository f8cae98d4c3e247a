"""Which files of a project import a given file, found statically.

A fix rewrites a literal in one file, and every model built from that file changes with it,
wherever the model is defined. pre-commit names only the changed files, so the models of a
file that was not named (a detection model reading a backbone's table) are found here: the
project's files are parsed (not imported) and their import statements followed backwards.
Torch-free.
"""

from __future__ import annotations

import ast
import functools
import os


INSTALLED = ("site-packages", "dist-packages")
# ruff's defaults, minus site-packages: linting an installed torchvision/timm is a use case.
DEFAULT_EXCLUDE = (
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints",
    ".mypy_cache", ".nox", ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".rflint_cache",
    ".ruff_cache", ".svn", ".tox", ".venv", ".vscode", "__pycache__", "__pypackages__",
    "_build", "buck-out", "build", "dist", "node_modules", "venv",
)

ROOT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg", "rflint.toml", ".rflint.toml")


def project_root(file: str) -> str:
    """The closest folder at or above ``file``'s package that holds a project marker (a
    ``.git``, ``pyproject.toml``, ``setup.py``...); for an installed package (under
    ``site-packages``) or without a marker, the topmost package folder (a standalone file's folder)."""
    package_parent, parts = _import_root(os.path.abspath(file))
    fallback = os.path.join(package_parent, parts[0]) if parts else package_parent
    folder = package_parent
    while os.path.basename(folder) not in INSTALLED:
        if any(os.path.exists(os.path.join(folder, marker)) for marker in ROOT_MARKERS):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return fallback


def importers(file: str, root: str | None = None) -> frozenset[str]:
    """The files under ``root`` (default: ``file``'s project root) that import ``file``,
    directly or through other modules. A package's ``__init__.py`` that imports it counts,
    but its own importers do not: every module of a package imports its ``__init__``, and
    an ``__init__`` that imports all its modules would make every file depend on every other."""
    file = os.path.abspath(file)
    imported_by = _imported_by(root or project_root(file))
    found: set[str] = set()
    pending = [file]
    while pending:
        for importer in imported_by.get(pending.pop(), ()):
            if importer not in found and importer != file:
                found.add(importer)
                if os.path.basename(importer) != "__init__.py":
                    pending.append(importer)
    return frozenset(found)


@functools.lru_cache(maxsize=4)
def _imported_by(root: str) -> dict[str, frozenset[str]]:
    """File -> the files under ``root`` whose import statements name it (parsed once per process)."""
    files = list(_python_files(root))
    modules = {}
    for path in files:
        _, parts = _import_root(path)
        modules[".".join(parts) or os.path.splitext(os.path.basename(path))[0]] = path
    edges: dict[str, set[str]] = {}
    for path in files:
        for target in _imports(path, modules):
            edges.setdefault(target, set()).add(path)
    return {target: frozenset(sources) for target, sources in edges.items()}


def _python_files(root: str):
    skipped = set(DEFAULT_EXCLUDE)
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [s for s in subfolders if s not in skipped and not s.startswith(".")]
        yield from (os.path.join(folder, name) for name in names if name.endswith(".py"))


def _imports(path: str, modules: dict[str, str]) -> set[str]:
    """The project files ``path`` imports (modules, or submodules named in ``from x import y``)."""
    try:
        with open(path, "rb") as handle:
            tree = ast.parse(handle.read(), path)
    except (OSError, SyntaxError, ValueError):
        return set()
    _, parts = _import_root(path)
    package = parts if os.path.basename(path) == "__init__.py" else parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [module] + [f"{module}.{alias.name}" if module else alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name in modules:
                found.add(modules[name])
    found.discard(path)
    return found


def _import_root(path: str):
    """``literals.import_root``, imported on first use: the config, which every run (a warm
    one too) imports, reads this module only for DEFAULT_EXCLUDE, and literals imports
    importlib.abc, tempfile and uuid."""
    from rflint.source.literals import import_root

    return import_root(path)
