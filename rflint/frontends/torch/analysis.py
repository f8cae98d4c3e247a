"""The Python API: ``rflint.analyze(model_or_factory, input_res=224)``.

Pipeline: build (meta device) -> capture (torch.fx, or eager recording) -> receptive fields -> Result.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import gc
import inspect
import linecache
import os
import re
from typing import Callable, Iterable, Sequence

from torch import nn

from rflint.frontends.torch.build import Built, build, meta_copy, type_names
from rflint.frontends.torch.capture import capture_fx, input_spec
from rflint.frontends.torch.capture_eager import capture_eager
from rflint.core.graph import analyze_graph
from rflint.core.layers import Site
from rflint.core.resolution import as_resolution, resolution_argument
from rflint.core.result import Result
from rflint.source.syntax import parsed


class CaptureError(RuntimeError):
    """The model was built but could not be traced or run at the input resolution.

    ``reason`` is a short explanation when torch's own message would mislead (it suggests
    settings of torch's for an op that needs tensor values), else None."""

    def __init__(self, message: str, component_types: frozenset[str], reason: str | None = None):
        super().__init__(reason or message)
        self.component_types = component_types
        self.reason = reason


# Torch's errors for a forward that reads tensor values, which a meta-device run has none of
# (detection post-processing: boolean masks, nonzero, unique, ``.item()``); the group names the op.
VALUE_DEPENDENT = re.compile(
    r"function for torch\.(?P<registered>\w+)\(\) raises unimplemented"
    r"|aten::(?P<aten>\w+): attempted to run this operator with Meta tensors"
    r"|Tensor\.(?P<item>item)\(\) cannot be called on meta tensors"
    r"|(?P<copy>Cannot copy out of meta tensor)"
    r"|cannot (?P<repeat>repeat_interleave) a meta tensor"
)


def value_dependent_reason(error: BaseException) -> str | None:
    """A one-line reason for an error that means the forward needs tensor values."""
    found = VALUE_DEPENDENT.search(str(error))
    if found is None:
        return None
    name = found.group(found.lastgroup)
    op = {"registered": f"torch.{name}", "aten": name.lstrip("_"), "item": "Tensor.item()",
          "copy": "a copy of its data", "repeat": "torch.repeat_interleave"}[found.lastgroup]
    return (f"the forward reads tensor values ({op}), which a meta-device run does not have "
            "(data-dependent post-processing, as in detection heads): lint the backbone")


def component_types(model: nn.Module) -> frozenset[str]:
    """Every class the model is made of, so classes that are only blocks can be told apart."""
    return type_names({type(m) for m in model.modules()})


def analyze(
    model_or_factory: nn.Module | Callable[[], nn.Module],
    input_res: int | Sequence[int] = 224,
    *,
    name: str | None = None,
    analyzed_files: Iterable[str] | None = None,
) -> Result:
    """Compute the receptive fields of every layer of a model.

    A factory is built with its parameters on the meta device, so no memory is spent and
    no real forward pass runs; construction sites are recorded in ``analyzed_files``
    (default: the file that defines the factory).
    """
    input_res = resolution_argument(input_res)  # before minutes of building: a typo fails now
    with garbage_collection_paused():
        return _analyze(model_or_factory, input_res, name, analyzed_files)


@contextlib.contextmanager
def garbage_collection_paused():
    """Everything an analysis allocates lives until it ends, so collections during it free
    nothing, yet each promotes the model's objects until a full collection walks torch's
    whole heap (0.1-0.2 s each). Paused, one young-generation pass at the end frees the
    analysis's garbage (fx graphs are cyclic): 36 torchvision models in one process took
    2.7 s, 0.8 s of it in the collector; paused, 2.0 s and 0.1 s."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            gc.collect(0)


def _analyze(model_or_factory, input_res, name, analyzed_files) -> Result:
    source = _definition_site(model_or_factory)
    if isinstance(model_or_factory, nn.Module):
        built = Built(model_or_factory, "given", {}, component_types(model_or_factory))
    else:
        if analyzed_files is None:
            analyzed_files = [source.file] if source else []
        built = build(model_or_factory, analyzed_files)
    return analyze_built(
        built, input_res,
        name=name or getattr(model_or_factory, "__name__", type(built.model).__name__),
        source=source,
        factory=None if isinstance(model_or_factory, nn.Module) else model_or_factory,
    )


def analyze_built(built: Built, input_res, *, name: str, source: Site | None = None, factory=None) -> Result:
    """The analysis of a model built already: the fix search's trials, built on meta, need
    no copy to the meta device (``analyze`` copies any model it is given)."""
    model = built.model
    if built.mode != "meta":
        model = meta_copy(model)  # a given or CPU-built model: never run it for real
    spec = input_spec(model)
    try:
        res = as_resolution(input_res, spec.ndim)
    except ValueError as error:  # "DxHxW" for a 2-D model: it cannot run at that resolution
        raise CaptureError(str(error), built.component_types) from error
    captured = _capture_with_channels(model, res, spec, built.component_types)
    return analyze_graph(
        captured,
        res,
        name=name,
        sites=built.sites,
        build=built.mode,
        component_types=built.component_types,
        source=source,
        factory=factory,
    )


def capture(model: nn.Module, input_res: Sequence[int], channels: int, traced=None):
    """The fx capture (of ``traced``, the model's trace from ``input_spec``, where fx could
    trace it), or the eager one if fx cannot trace or run the model.

    If the eager capture fails too, its error is raised: it comes from running the
    model's own code, so it says why the model does not run at ``input_res``.
    """
    if traced is not None:
        try:
            return capture_fx(model, input_res, channels, traced)
        except RuntimeError:
            # a torch op refused the shapes the graph gave it: the model's own forward makes
            # the same ops on the same shapes (the graph was traced from it), so running it
            # again eagerly would meet the same error after running every op once more
            # (pytorchcv's CIFAR ResNets at 224 px: 100 s of CPU)
            raise
        except Exception:  # fx's Python errors (TypeError, AttributeError): eager may run
            pass
    return capture_eager(model, input_res, channels)


def capture_probe(model: nn.Module) -> Callable[[int], bool]:
    """Whether ``model`` captures at a square input of a given size: copied to the meta
    device and traced once for every size tried (a whole analysis per size copied and
    traced the model each time: 40 % of a search's cost)."""
    model = meta_copy(model)
    spec = input_spec(model)

    def runs(size: int) -> bool:
        try:
            with garbage_collection_paused():
                _capture_with_channels(model, as_resolution(size, spec.ndim), spec, frozenset())
            return True
        except Exception:
            return False

    return runs


def _capture_with_channels(model: nn.Module, res, spec, components: frozenset[str]):
    """Capture with the first channel count the model accepts: the first conv built is
    not always the first one run (a functional stem conv)."""
    first_error = None
    for channels in spec.channels:
        try:
            return capture(model, res, channels, spec.traced)
        except Exception as error:
            first_error = first_error or error
            if getattr(error, "input_channels_accepted", False):
                break  # its first conv took them: another count fails there or meets the same error later
    raise CaptureError(str(first_error), components, value_dependent_reason(first_error)) from first_error


def _definition_site(target) -> Site | None:
    """The ``def``/``class`` keyword of a factory or model class (of a partial's function),
    where the linter reports RF003, not its first decorator (``inspect``'s line); one
    parse per file."""
    target = target.func if isinstance(target, functools.partial) else target
    target = target if inspect.isfunction(target) or inspect.isclass(target) else type(target)
    target = inspect.unwrap(target)  # torchvision's factories are decorated
    try:
        file = os.path.abspath(inspect.getsourcefile(target))
    except TypeError:  # a builtin, or no source file
        return None
    found = _definition_lines("".join(linecache.getlines(file))).get(target.__qualname__)
    if found is None and inspect.isfunction(target):  # made by exec or a lambda: no def to find
        found = (target.__code__.co_firstlineno, 1)
    if found is None:
        return None
    line, column = found
    return Site(file, line, column, line, column)


@functools.lru_cache(maxsize=16)
def _definition_lines(source: str) -> dict[str, tuple[int, int]]:
    """(line, 1-based column) of the keyword of every def and class of a file, by qualified name."""
    lines: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                lines.setdefault(name, (child.lineno, child.col_offset + 1))
                visit(child, name + ("." if isinstance(child, ast.ClassDef) else ".<locals>."))
            else:
                visit(child, prefix)

    try:
        visit(parsed(source), "")
    except (SyntaxError, ValueError):
        pass
    return lines
