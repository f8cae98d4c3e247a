"""The package reads like the pipeline: each stage imports only the stages before it, no
module imports itself back through others, and the core imports no framework."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rflint"

# The stages in pipeline order: each may import itself and the stages before it.
STAGES = ["about", "core", "source", "frontends", "fix", "report", "run"]
# The entry points (the package's public API, the CLI, the language server, the docs generator).
ENTRY_POINTS = {"rflint", "rflint.__main__", "rflint.cli", "rflint.server", "rflint.dev"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    return {id(inner) for node in ast.walk(tree)
            if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
            for inner in ast.walk(node)}


def imports(path: Path) -> set[str]:
    """The rflint modules a file imports: lazy imports and module names written as strings
    (imported by ``importlib``) included, ``if TYPE_CHECKING:`` blocks not."""
    tree = ast.parse(path.read_text())
    skipped = _type_checking_only(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_name(path).split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found |= {target} | {f"{target}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("rflint."):
            found.add(node.value)
    return {name for name in found if name.startswith("rflint")}


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {t for t in imports(path) if t in modules and t != name} for name, path in modules.items()}


def stage(module: str) -> str:
    return module.split(".")[1]


def test_every_module_belongs_to_a_stage_or_is_an_entry_point():
    assert [m for m in import_graph() if m not in ENTRY_POINTS and stage(m) not in STAGES] == []


def test_stages_import_only_earlier_stages():
    wrong = [f"{module} -> {target}" for module, targets in import_graph().items() if module not in ENTRY_POINTS
             for target in targets
             if target in ENTRY_POINTS or STAGES.index(stage(target)) > STAGES.index(stage(module))]
    assert wrong == []


def test_no_module_imports_itself_back():
    edges = import_graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_graph_finds_what_the_package_imports():
    """The checks above would pass on an empty graph: make sure it sees real edges."""
    edges = import_graph()
    assert "rflint.core.receptive_field" in edges["rflint.core.layout"]
    assert "rflint.frontends.declared.file" in edges["rflint.run.file_kinds"]  # named by a string


def test_the_core_and_the_source_readers_import_no_framework():
    modules = sorted(m for m in import_graph() if m not in ENTRY_POINTS and stage(m) in ("about", "core", "source"))
    code = (f"import sys; import {', '.join(modules)}; "
            "assert not {'torch', 'keras', 'tensorflow', 'numpy'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
