"""Stage 2: find the models a source file defines.

A model is (a) a public function defined in the file, annotated to return an ``nn.Module``
subclass and callable with no arguments (torchvision's and timm's factories), or (b) an
``nn.Module`` subclass defined in the file that can be built with no arguments. Whether a
class is only a building block of another model is decided later, across the whole run.
"""

from __future__ import annotations

import ast
import functools
import inspect
import typing
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

from torch import nn

# Factory parameters that would load weights: rflint never downloads anything.
NO_WEIGHTS = {"weights": None, "pretrained": False, "weights_backbone": None, "pretrained_backbone": False}


@dataclass
class ModelEntry:
    name: str
    file: str
    line: int
    column: int
    kind: str  # "factory" | "class"
    target: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_res: tuple[int, ...] | None = None  # configured for this model

    def factory(self) -> Callable[[], nn.Module]:
        return functools.partial(self.target, **self.kwargs)

    @property
    def type_name(self) -> str:
        """``module:qualname`` of the factory or class, as ``component_types`` names classes."""
        return f"{self.target.__module__}:{self.target.__qualname__}"


def definitions(source: str) -> dict[str, tuple[int, int]]:
    """Top-level def/class name -> (line, 1-based column of the keyword)."""
    return {
        node.name: (node.lineno, node.col_offset + 1)
        for node in ast.parse(source).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def _returns_module(fn, base: type = nn.Module) -> bool:
    """``fn`` is annotated to return a ``base`` (``keras.Model`` for the Keras front end)."""
    try:
        annotation = typing.get_type_hints(fn).get("return")
    except Exception:
        annotation = fn.__annotations__.get("return")
        if isinstance(annotation, str):
            annotation = fn.__globals__.get(annotation.rsplit(".", 1)[-1])
    return inspect.isclass(annotation) and issubclass(annotation, base)


def no_argument_kwargs(fn) -> dict[str, Any] | None:
    """Keyword arguments that make ``fn`` callable with no user input, or None if impossible."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kwargs = {}
    for p in parameters:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in NO_WEIGHTS:
            kwargs[p.name] = NO_WEIGHTS[p.name]
        elif p.default is p.empty:
            return None
    return kwargs


def _torch_model_kind(name: str, value) -> str | None:
    """"class" for an ``nn.Module`` with a forward, "factory" for a function annotated to
    return one, else None."""
    if inspect.isclass(value) and issubclass(value, nn.Module):
        return "class" if value.forward is not nn.Module.forward else None  # no forward: a container
    return "factory" if inspect.isfunction(value) and _returns_module(value) else None


def find_models(module: ModuleType, file: str, source: str, kind_of=None) -> tuple[list[ModelEntry], list[str]]:
    """Models defined in ``module`` (loaded from ``file``), and why other candidates were
    skipped. ``kind_of(name, value)`` says "class", "factory" or None (torch's rule by default)."""
    lines = definitions(source)
    entries, skipped = [], []
    kind_of = kind_of or _torch_model_kind
    for name, value in vars(module).items():
        if name.startswith("_") or name not in lines or getattr(value, "__module__", None) != module.__name__:
            continue
        kind = kind_of(name, value)
        if kind is None:
            continue
        kwargs = no_argument_kwargs(value)
        if kwargs is None:
            skipped.append(f"skipped {name}: needs arguments to be built")
            continue
        entries.append(ModelEntry(name, file, *lines[name], kind, value, kwargs))
    entries.sort(key=lambda e: e.line)
    return entries, skipped


def with_configured(entries: list[ModelEntry], module: ModuleType, file: str, source: str, configured,
                    skipped: list[str]) -> list[ModelEntry]:
    """Add the models ``[tool.rflint] models`` names in this file (with their keyword
    arguments and resolution); a configured name replaces the discovered one."""
    lines = definitions(source)
    by_name = {e.name: e for e in entries}
    for config in configured:
        target = module
        for part in config.name.split("."):
            target = getattr(target, part, None)
        if target is None:
            raise LookupError(f"configured model '{config.target}' is not defined in {file}")
        line, column = lines.get(config.name.split(".")[0], (1, 1))
        kind = "class" if inspect.isclass(target) else "factory"
        kwargs = {**(no_argument_kwargs(target) or {}), **config.kwargs}
        by_name[config.name] = ModelEntry(config.name, file, line, column, kind, target, kwargs, config.input_res)
        skipped[:] = [note for note in skipped if not note.startswith(f"skipped {config.name}:")]
    return sorted(by_name.values(), key=lambda e: e.line)


def declared_resolution(entry: ModelEntry) -> tuple[int, int] | None:
    """The input size the model's library declares for it (``--input-res auto``), or None.

    timm: the ``input_size`` of the model's default pretrained config, read from timm's
    registry without building the model. torchvision: the crop size its default weights
    are evaluated at. A library is consulted only if the user's code already imported it.
    """
    import sys

    module = getattr(entry.target, "__module__", None) or ""
    timm, torchvision = sys.modules.get("timm"), sys.modules.get("torchvision.models")
    if module.startswith("timm.") and timm is not None:
        return _timm_resolution(timm, entry)
    if module.startswith("torchvision.") and torchvision is not None:
        return _torchvision_resolution(torchvision, entry.target)
    return None


def _pair(size) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size[-2:])


def _timm_resolution(timm: ModuleType, entry: ModelEntry) -> tuple[int, int] | None:
    """A factory's own config; ``create_model``'s by ``model_name``; for a class, the size
    every model of its module shares. An ``img_size`` argument overrides them all."""
    if "img_size" in entry.kwargs:
        return _pair(entry.kwargs["img_size"])
    if inspect.isclass(entry.target):
        names = timm.list_models(module=entry.target.__module__.rsplit(".", 1)[-1])
    elif entry.target is timm.create_model:
        names = [entry.kwargs.get("model_name", "")]
    else:
        names = [entry.target.__name__]
    configs = (timm.models.get_pretrained_cfg(name) for name in names)
    sizes = {_pair(config.input_size) for config in configs if config is not None}
    return sizes.pop() if len(sizes) == 1 else None


def _torchvision_resolution(models: ModuleType, factory) -> tuple[int, int] | None:
    """The crop of the default weights' image-classification transforms (video,
    segmentation and detection weights declare none)."""
    try:
        transforms = models.get_model_weights(factory).DEFAULT.transforms
    except (ValueError, KeyError, AttributeError):
        return None
    crop = transforms.keywords.get("crop_size") if transforms.func.__name__ == "ImageClassification" else None
    return None if crop is None else _pair(crop)
