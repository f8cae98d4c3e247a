"""Whether a function returns a model, read from its source: nothing here calls it.

A linter that calls every public function would run a project's ``main()`` or training
loop. A function is taken as a model factory only when its source shows that what it
returns was built by a model class, or by another function shown (the same way, in any
module, the user's or a library's) to return a model. What counts as a model class is the
front end's predicate (``nn.Module`` subclasses for torch), so the inference is shared.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import sys
import textwrap
import typing
from types import ModuleType
from typing import Any, Callable

IsModelClass = Callable[[Any], bool]

# Methods that return the model they are called on (``Net().eval()``).
RETURNS_SELF = frozenset({"eval", "train", "to", "cpu", "float", "half", "double", "requires_grad_"})
# How far a chain of helpers is followed (timm: factory -> _create_x -> build_model_with_cfg).
MAX_DEPTH = 6

# What a program does and a factory does not: parse the command line, read input, train.
PROGRAM_CALLS = frozenset({"parse_args", "parse_known_args", "ArgumentParser", "input", "exit", "backward",
                           "zero_grad", "fit", "save", "savefig", "show"})
PROGRAM_NAMES = frozenset({"main", "train", "training", "fit", "evaluate", "test", "run", "predict", "inference",
                           "benchmark", "cli"})


def returns_model(function, is_model_class: IsModelClass) -> bool:
    """Whether ``function``'s source shows it returns an instance of a model class."""
    return _Inference(is_model_class).returns_model(function, MAX_DEPTH)


def program_reason(function) -> str | None:
    """Why ``function`` looks like a program rather than a factory (its name or a call it
    makes: argparse, ``sys.argv``, ``input()``, a backward pass...), or None."""
    name = function.__name__
    if name in PROGRAM_NAMES:
        return f"'{name}' is the name of a program, not of a model factory"
    node = _function_node(function)
    if node is None:
        return None
    for child in _own_nodes(node):
        if isinstance(child, ast.Call) and _called_name(child.func) in PROGRAM_CALLS:
            return f"it calls {_called_name(child.func)}(), which a model factory does not"
        if isinstance(child, ast.Attribute) and child.attr == "argv" and _called_name(child.value) == "sys":
            return "it reads sys.argv"
    return None


def registered(function) -> bool:
    """Whether a model library's registry lists ``function`` as a model entry point (timm's
    ``register_model``, torchvision's ``register_model``). Only libraries already imported
    are asked."""
    timm_registry = sys.modules.get("timm.models._registry")
    if timm_registry is not None and getattr(timm_registry, "_model_entrypoints", {}).get(function.__name__) is function:
        return True
    torchvision_api = sys.modules.get("torchvision.models._api")
    return torchvision_api is not None and getattr(torchvision_api, "BUILTIN_MODELS", {}).get(function.__name__) is function


def annotated_model(function, is_model_class: IsModelClass) -> bool:
    """Whether ``function``'s return annotation names a model class (or a TypeVar bound to one)."""
    try:
        annotation = typing.get_type_hints(function).get("return")
    except Exception:
        annotation = getattr(function, "__annotations__", {}).get("return")
        if isinstance(annotation, str):
            annotation = getattr(function, "__globals__", {}).get(annotation.rsplit(".", 1)[-1])
    if isinstance(annotation, typing.TypeVar):
        annotation = annotation.__bound__
    return is_model_class(annotation)


class _Inference:
    def __init__(self, is_model_class: IsModelClass):
        self.is_model_class = is_model_class
        self.seen: dict[Any, bool] = {}

    def returns_model(self, function, depth: int) -> bool:
        function = inspect.unwrap(function)
        code = getattr(function, "__code__", None)
        if code is None or depth <= 0:
            return False
        code = _code_key(code)
        if code in self.seen:
            return self.seen[code]
        self.seen[code] = False  # a recursive helper proves nothing about itself
        answer = annotated_model(function, self.is_model_class) or registered(function) or self._by_source(function, depth)
        self.seen[code] = answer
        return answer

    def _by_source(self, function, depth: int) -> bool:
        node = _function_node(function)
        if node is None:
            return False
        assigned: dict[str, list[ast.expr]] = {}
        returned: list[ast.expr] = []
        for child in _own_nodes(node):
            if isinstance(child, ast.Return) and child.value is not None:
                returned.append(child.value)
            elif isinstance(child, ast.Assign):
                for target in child.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(child.value)
            elif isinstance(child, (ast.AnnAssign, ast.AugAssign)) and isinstance(child.target, ast.Name) and child.value:
                assigned.setdefault(child.target.id, []).append(child.value)
        scope = _Scope(function)
        return any(self._builds_model(value, assigned, scope, depth, set()) for value in returned)

    def _builds_model(self, expr: ast.expr, assigned, scope: "_Scope", depth: int, names: set[str]) -> bool:
        if isinstance(expr, ast.Name):
            if expr.id in names:
                return False
            names.add(expr.id)
            return any(self._builds_model(value, assigned, scope, depth, names) for value in assigned.get(expr.id, ()))
        if isinstance(expr, ast.IfExp):
            return any(self._builds_model(side, assigned, scope, depth, names) for side in (expr.body, expr.orelse))
        if not isinstance(expr, ast.Call):
            return False
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr in RETURNS_SELF:
            if self._builds_model(func.value, assigned, scope, depth, names):
                return True
        callee = scope.resolve(func)
        if callee is None:
            return False
        if self.is_model_class(callee):
            return True
        if inspect.ismethod(callee) and self.is_model_class(callee.__self__):  # a classmethod constructor
            return True
        return inspect.isfunction(inspect.unwrap(callee)) and self.returns_model(callee, depth - 1)


class _Scope:
    """Names as a function sees them (its globals, closure and builtins), resolved without
    calling anything: only attributes of modules and classes are read."""

    def __init__(self, function):
        self.namespace = {**vars(builtins), **getattr(function, "__globals__", {})}
        closure = getattr(function, "__closure__", None) or ()
        for name, cell in zip(function.__code__.co_freevars, closure):
            try:
                self.namespace[name] = cell.cell_contents
            except ValueError:  # an empty cell
                pass

    def resolve(self, expr: ast.expr):
        if isinstance(expr, ast.Name):
            return self.namespace.get(expr.id)
        if isinstance(expr, ast.Attribute):
            owner = self.resolve(expr.value)
            if isinstance(owner, ModuleType) or inspect.isclass(owner):
                try:
                    return getattr(owner, expr.attr, None)
                except Exception:  # a lazy module's import failing
                    return None
        return None


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _own_nodes(function: ast.AST):
    """Every node of a function's body, not descending into nested functions, classes or lambdas."""
    pending = list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))


def _function_node(function) -> ast.FunctionDef | None:
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    return None if code is None else _parsed(code, code.co_filename)


def _code_key(code) -> tuple:
    """Code objects compare equal across files (``co_filename`` is not compared)."""
    return code, code.co_filename


@functools.lru_cache(maxsize=4096)
def _parsed(code, file: str) -> ast.FunctionDef | None:
    try:
        lines, _ = inspect.getsourcelines(code)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
