"""Build a model at no memory cost and remember where each layer was constructed.

Parameters and buffers go to the meta device as they are registered (the approach of
accelerate's ``init_empty_weights``), so constructors that compute with ordinary tensors
(torchvision's RegNets call ``.item()``) still work, while a 2-billion-parameter net
allocates nothing. Only when that fails is the model built for real on the CPU.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import linecache
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from rflint.core.layers import Site

META = torch.device("meta")


@dataclass
class Built:
    model: nn.Module
    mode: str  # "meta" (parameters on the meta device) or "cpu" (real fallback)
    sites: dict[str, tuple[Site, ...]]  # module path -> construction frames in analyzed files, innermost first
    component_types: frozenset[str]  # every class the model is made of


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Move every parameter and buffer to the meta device the moment it is registered."""
    register_parameter = nn.Module.register_parameter
    register_buffer = nn.Module.register_buffer

    def meta_parameter(module, name, param):
        if param is not None and not param.is_meta:
            param = type(param)(torch.empty_like(param, device=META), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    def meta_buffer(module, name, tensor, persistent=True):
        if tensor is not None and not tensor.is_meta:
            tensor = torch.empty_like(tensor, device=META)
        register_buffer(module, name, tensor, persistent=persistent)

    nn.Module.register_parameter = meta_parameter
    nn.Module.register_buffer = meta_buffer
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter
        nn.Module.register_buffer = register_buffer


def _char_column(file: str, line: int, byte_col: int | None) -> int:
    """Frame positions count UTF-8 bytes; diagnostics count characters (1-based)."""
    if byte_col is None:
        return 1
    text = linecache.getline(file, line).encode()
    return len(text[:byte_col].decode(errors="ignore")) + 1


def _frame_site(frame) -> Site:
    code = frame.f_code
    # Code objects compare equal across files (co_filename is not compared): copies of a
    # model file must not share sites.
    return _site_at(code, code.co_filename, frame.f_lasti, frame.f_lineno)


@functools.lru_cache(maxsize=4096)
def _site_at(code, file: str, lasti: int, lineno: int) -> Site:
    """The span of the instruction at ``lasti``: for a call, the whole call expression."""
    line, end_line, col, end_col = lineno, None, None, None
    if hasattr(code, "co_positions") and lasti >= 0:  # Python >= 3.11
        line, end_line, col, end_col = next(itertools.islice(code.co_positions(), lasti // 2, None))
        line = line or lineno
    end_line = end_line or line
    return Site(file, line, _char_column(file, line, col), end_line, _char_column(file, end_line, end_col))


@contextlib.contextmanager
def recording_sites(analyzed: frozenset[str]) -> Iterator[dict[int, tuple[nn.Module, tuple[Site, ...]]]]:
    """Record, for each module built, the frames of its construction call in analyzed files.

    The call site is the first frame outside the module's own constructors; from there
    outward, frames in analyzed files are kept (innermost first), so a conv built inside a
    library helper still points at the line of the model file that asked for it.
    """
    records: dict[int, tuple[nn.Module, tuple[Site, ...]]] = {}
    module_init = nn.Module.__init__
    outside = sys._getframe(2)  # the caller of ``with recording_sites(...)``: frames from there out built nothing
    constructor_codes: dict[type, frozenset] = {}
    # Sibling modules are built from the same frames: the sites of a caller (its own, if in
    # an analyzed file, then its callers') are kept while it stays at the same instruction.
    kept: dict = {}

    def sites_from(frame) -> tuple[Site, ...]:
        pending = []
        while frame is not None and frame is not outside and kept.get(frame, (None,))[0] != frame.f_lasti:
            pending.append(frame)
            frame = frame.f_back
        sites = kept[frame][1] if frame in kept else ()
        for index in range(len(pending) - 1, -1, -1):
            frame = pending[index]
            if frame.f_code.co_filename in analyzed:
                sites = (_frame_site(frame), *sites)
            if index:  # the innermost frame is not kept: a finished frame holds on to its locals
                kept[frame] = (frame.f_lasti, sites)
        return sites

    def recording_init(self, *args, **kwargs):
        module_init(self, *args, **kwargs)
        frame = sys._getframe(1)
        kind = type(self)
        own = constructor_codes.get(kind)
        if own is None:
            own = constructor_codes[kind] = _constructor_codes(kind)
        if frame.f_code in own:  # the constructor that called Module.__init__ is self's
            frame = frame.f_back
            # Reading a frame's locals copies them all: only a frame that may be self's is read.
            while frame is not None and frame.f_code in own and frame.f_locals.get("self") is self:
                frame = frame.f_back
        records[id(self)] = (self, sites_from(frame))

    nn.Module.__init__ = recording_init
    try:
        yield records
    finally:
        nn.Module.__init__ = module_init


def _constructor_codes(kind: type) -> frozenset:
    """The code of every ``__init__`` in ``kind``'s MRO: the frames that can build an instance."""
    return frozenset(
        vars(klass)["__init__"].__code__ for klass in kind.__mro__ if hasattr(vars(klass).get("__init__"), "__code__")
    )


@contextlib.contextmanager
def everything_on_meta() -> Iterator[None]:
    with torch.device("meta"), parameters_on_meta():
        yield


@contextlib.contextmanager
def skipping_init() -> Iterator[None]:
    """``torch.nn.init`` fills values rflint never reads; skipping it makes builds ~3x faster."""
    originals = {name: getattr(nn.init, name) for name in dir(nn.init) if name.endswith("_") and not name.startswith("_")}
    for name in originals:
        setattr(nn.init, name, _unchanged)
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(nn.init, name, function)


def _unchanged(tensor, *args, **kwargs):
    return tensor


def _both(first, second):
    @contextlib.contextmanager
    def combined() -> Iterator[None]:
        with first(), second():
            yield

    return combined


# Build strategies, cheapest first: parameters and buffers moved to meta as they are
# registered, weight init skipped (constructors may still compute with ordinary tensors and
# call ``.item()``, like torchvision's RegNets); everything on meta (no allocation at all,
# even for a 400 GB layer); the same with weight init; and last a real CPU build.
ATTEMPTS = (
    ("meta", _both(parameters_on_meta, skipping_init)),
    ("meta", _both(everything_on_meta, skipping_init)),
    ("meta", everything_on_meta),
    ("meta", parameters_on_meta),
    ("cpu", contextlib.nullcontext),
)


def build(factory: Callable[[], nn.Module], analyzed: Iterable[str] = ()) -> Built:
    """Call ``factory`` on the meta device, falling back as ``ATTEMPTS`` describes."""
    analyzed = frozenset(analyzed)
    for mode, context in ATTEMPTS:
        try:
            with recording_sites(analyzed) as records, context():
                model = factory()
            break
        except Exception:
            if mode == "cpu":
                raise
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    sites, kinds = {}, set()
    for path, module in model.named_modules(remove_duplicate=False):
        kinds.add(type(module))
        record = records.get(id(module))
        if record and record[1]:
            sites[path] = record[1]
    return Built(in_eval_mode(model), mode, sites, type_names(kinds))


def type_names(kinds: Iterable[type]) -> frozenset[str]:
    """``module:qualname`` of each class, the spelling of ``Result.component_types``."""
    return frozenset(f"{kind.__module__}:{kind.__qualname__}" for kind in kinds)


def in_eval_mode(model: nn.Module) -> nn.Module:
    """``model.eval()``. A module that keeps nn.Module's ``train`` and ``__setattr__`` gets
    its flag written directly: ``Module.__setattr__``'s checks of its parameters, buffers and
    children cost more than the rest of ``eval`` (0.5 ms of EfficientNet-B0's 0.75)."""
    if type(model).eval is not nn.Module.eval:
        return model.eval()
    pending = [model]
    while pending:
        module = pending.pop()
        kind = type(module)
        if kind.train is nn.Module.train and kind.__setattr__ is nn.Module.__setattr__:
            object.__setattr__(module, "training", False)
            pending.extend(child for child in module._modules.values() if child is not None)
        else:
            module.train(False)
    return model


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the meta device, made
    without copying any data: the user's model (on any device) is left untouched."""
    memo = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in memo:
            meta = tensor.to("meta")
            memo[id(tensor)] = nn.Parameter(meta, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else meta
    return copy.deepcopy(model, memo)
