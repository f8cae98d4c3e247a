"""Find the stride / patch-size literal change that makes a model fully utilized.

The paper's Section 5 refinements: reduce downsampling (a stride 2 becomes 1, a 4x4/4
patchify stem becomes 2x2/2), make the smallest change, bring I_min below I_res and keep
it as close to I_res as possible. rflint cannot trust arithmetic on the old graph for this
(a stride of 1 can switch on a residual shortcut, which adds a shorter path), so every
candidate is verified: the analyzed files are re-imported with the literal overridden in
memory, the model is rebuilt on the meta device and re-analysed. No file is touched here.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sys
import tokenize
import types
from dataclasses import astuple, dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .analysis import analyze
from .build import build
from .diagnostics import Edit, Fix
from .discover import ModelEntry
from .literals import import_file, package_siblings
from .result import Layer, Result, Site
from .rules import fmt_size

PAIRED_LITERALS = 4  # pairs are tried among this many of the latest downsampling literals
DOWNSAMPLING_KINDS = {"conv", "pool"}  # a transposed conv's stride upsamples


@dataclass
class Knob:
    """One stride literal and everything halving it moves.

    A literal may govern several layers (a config-table row, a default argument); the
    kernel literals of the patchify layers among them (kernel == stride) move along, so
    4x4/4 becomes 2x2/2 rather than overlapping 4x4/2 patches.
    """

    site: Site
    stride: int
    layers: list[Layer] = field(default_factory=list)
    patch_kernels: dict[Site, int] = field(default_factory=dict)
    depth: int = 0  # index of the latest layer it governs

    def changes(self) -> dict[Site, int]:
        """Literal -> its new value."""
        return {**{site: _halved(k) for site, k in self.patch_kernels.items()}, self.site: _halved(self.stride)}

    def describe(self) -> str:
        names = ", ".join(layer.name for layer in self.layers)
        new_stride = _halved(self.stride)
        if not self.patch_kernels:
            return f"stride {self.stride} -> {new_stride} of {names}"
        kernel = next(iter(self.patch_kernels.values()))
        axes = len(self.layers[0].kernel)
        window = "x".join([str(kernel)] * axes), "x".join([str(_halved(kernel))] * axes)
        return f"patch {window[0]}/{self.stride} -> {window[1]}/{new_stride} of {names}"


def _halved(value: int) -> int:
    """The paper's step: a stride 2 becomes 1, a 4x4 patch 2x2."""
    return max(value // 2, 1)


@dataclass(frozen=True)
class Candidate:
    """Stride literals changed together; fewer is better (the paper's smallest change)."""

    knobs: tuple[Knob, ...]

    def changes(self) -> dict[Site, int]:
        return {site: new for knob in self.knobs for site, new in knob.changes().items()}

    def overrides(self) -> frozenset[tuple[tuple[str, int, int], int]]:
        """Hashable ``import_file`` overrides, so trials can be shared between models."""
        return frozenset(((s.file, s.line, s.column), new) for s, new in self.changes().items())

    def governs(self, result: Result) -> bool:
        sites = self.changes().keys()
        return any(s in sites for layer in result.layers for s in (*layer.stride_literals, *layer.kernel_literals))


@dataclass(frozen=True)
class Figures:
    """Cost of a model at the input resolution; ``shapes`` decide checkpoint compatibility.

    FLOPs are FlopCounterMode's count (2 per multiply-accumulate; the paper counts MACs).
    """

    flops: int
    params: int
    shapes: tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class Trial:
    """A model rebuilt with some literals overridden; ``valid`` when it built, ran and
    became fully utilized. ``error`` says why it did not build or run."""

    valid: bool
    i_min: tuple[int, ...] | None = None
    figures: Figures | None = None
    error: str | None = None


Trials = dict[tuple[str, str, frozenset], Trial]  # (file, model, overrides): kept for one file's models


def search_fixes(
    entry: ModelEntry,
    result: Result,
    job,
    siblings: Sequence[tuple[ModelEntry, Result]] = (),
    trials: Trials | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Fix, ...]:
    """Verified stride / patch fixes for a model that is not fully utilized, best first.

    ``siblings`` are the file's other analysed models: a literal they share (EfficientNet's
    table, MnasNet's ``_stack`` calls) is changed only if the change is valid for each of
    them too. Pass the same ``trials`` dict for every model of a file so a shared literal
    is not rebuilt once per model. ``progress`` hears of each rebuild before it starts (a
    worker's time limit then applies per rebuild, not to the whole search). Without a
    valid candidate, one display-only advice.
    """
    knobs, literal_free = downsampling_knobs(result)
    # A package's modules register into each other (torchvision's ``register_model``):
    # a trial re-imports the model's whole package folder, never one module alone.
    rebuilt = job.analyzed | package_siblings(entry.file)
    trials = {} if trials is None else trials

    def trial(model: ModelEntry, input_res, candidate: Candidate) -> Trial:
        key = (model.file, model.name, candidate.overrides())
        if key not in trials:
            if progress:
                progress(f"{model.name} with {'; '.join(knob.describe() for knob in candidate.knobs)}")
            trials[key] = _rebuild_and_analyze(model, input_res, dict(candidate.overrides()), rebuilt)
        return trials[key]

    with analyzed_modules_restored(rebuilt):
        valid = _verified_candidates(entry, result, knobs, siblings, trial)
    if not valid:
        return (_advice(result, literal_free, tried=bool(knobs)),)
    before = _measure_original(entry, result.input_res, job.analyzed)
    return tuple(_fix(candidate, verified, before, result, entry, siblings) for candidate, verified in valid)


def _verified_candidates(entry, result, knobs, siblings, trial) -> list[tuple[Candidate, Trial]]:
    """The valid candidates of the smallest size that has any, best first."""
    # Cheap siblings first: a change one of them rejects then costs no expensive rebuild.
    by_cost = sorted(siblings, key=lambda sibling: len(sibling[1].layers))
    for candidates in _candidates_by_size(knobs):
        valid = []
        for candidate in candidates:
            verified = trial(entry, result.input_res, candidate)
            if verified.valid and all(
                trial(sibling, sibling_result.input_res, candidate).valid
                for sibling, sibling_result in by_cost
                if candidate.governs(sibling_result)
            ):
                valid.append((candidate, verified))
        if valid:
            # The paper keeps I_min as close to I_res as possible, then the cheaper change wins.
            return sorted(valid, key=lambda ct: (tuple(-m for m in ct[1].i_min), ct[1].figures.flops))
    return []


def search_file_fixes(analysed: Sequence[tuple[ModelEntry, Result]], job) -> dict[str, tuple[Fix, ...]]:
    """Fixes for every model of one file that is not fully utilized, each checked against
    the others (shared literals), with rebuilds shared between them."""
    trials: Trials = {}
    return {
        entry.name: search_fixes(entry, result, job, [s for s in analysed if s[0] is not entry], trials)
        for entry, result in analysed
        if not result.fully_utilized()
    }


def without_building_blocks(analysed: Sequence[tuple[ModelEntry, Result]]) -> list[tuple[ModelEntry, Result]]:
    """The models that are not building blocks of another model in ``analysed``: a class
    another model is built from is checked through that model, not as a sibling of its own."""
    blocks = {c for entry, result in analysed for c in result.component_types if c != entry.type_name}
    return [(entry, result) for entry, result in analysed if entry.type_name not in blocks]


@contextlib.contextmanager
def analyzed_modules_restored(analyzed: Iterable[str]) -> Iterator[None]:
    """Trials re-import the analyzed files with overrides; afterwards ``sys.modules`` must
    hold the modules imported before, or a factory importing lazily would build a trial's model."""
    analyzed = frozenset(analyzed)

    def analyzed_modules() -> dict[str, types.ModuleType]:
        return {name: module for name, module in sys.modules.items()
                if os.path.abspath(getattr(module, "__file__", None) or "") in analyzed}

    saved = analyzed_modules()
    try:
        yield
    finally:
        for name in analyzed_modules():
            del sys.modules[name]
        sys.modules.update(saved)
        for name, module in saved.items():  # ``package.submodule`` attributes too
            parent, _, child = name.rpartition(".")
            if parent in sys.modules:
                setattr(sys.modules[parent], child, module)


def downsampling_knobs(result: Result) -> tuple[list[Knob], list[Layer]]:
    """The stride literals of downsampling layers (latest last), and the downsampling
    layers whose stride comes from no literal in an analyzed file."""
    knobs: dict[Site, Knob] = {}
    literal_free: list[Layer] = []
    for depth, layer in enumerate(result.layers):
        if layer.kind not in DOWNSAMPLING_KINDS:
            continue
        for axis, stride in enumerate(layer.stride):
            if stride <= 1:
                continue
            site = _axis_site(layer.stride_literals, axis)
            if site is None:
                if layer not in literal_free:
                    literal_free.append(layer)
                continue
            knob = knobs.setdefault(site, Knob(site, int(stride)))
            if layer not in knob.layers:
                knob.layers.append(layer)
            knob.depth = depth
            kernel_site = _axis_site(layer.kernel_literals, axis)
            if layer.kernel[axis] == stride and kernel_site is not None:
                knob.patch_kernels[kernel_site] = layer.kernel[axis]
    return sorted(knobs.values(), key=lambda k: k.depth), literal_free


def _axis_site(sites: Sequence[Site | None], axis: int) -> Site | None:
    return sites[axis] if axis < len(sites) else None


def _candidates_by_size(knobs: list[Knob]) -> Iterable[list[Candidate]]:
    """Single literals, then pairs among the latest ones (the paper changes late strides)."""
    yield [Candidate((knob,)) for knob in knobs]
    yield [Candidate(pair) for pair in itertools.combinations(knobs[-PAIRED_LITERALS:], 2)]


def _rebuild_and_analyze(entry: ModelEntry, input_res, overrides: Mapping, analyzed) -> Trial:
    """Re-import the analyzed files with ``overrides``, rebuild, re-trace and re-analyse.

    Any failure (the model no longer builds, a residual add whose sides no longer match)
    rejects the change; so does an I_min still at or above I_res.
    """
    try:
        module = import_file(entry.file, analyzed, overrides)
        factory = functools.partial(getattr(module, entry.name), **entry.kwargs)
        result, figures = analyze_and_measure(factory, input_res, entry.name, analyzed)
    except (Exception, SystemExit) as error:
        first_line = str(error).strip().partition("\n")[0]
        return Trial(valid=False, error=f"{type(error).__name__}: {first_line}")
    return Trial(result.fully_utilized(), result.i_min, figures)


def analyze_and_measure(factory: Callable[[], nn.Module], input_res, name: str, analyzed) -> tuple[Result, Figures]:
    """Build on the meta device and analyse, counting FLOPs on the meta forward that the
    analysis runs anyway: a second forward per candidate would cost more than counting."""
    model = build(factory, analyzed).model.to("meta")
    with FlopCounterMode(display=False) as counter:
        result = analyze(model, input_res, name=name)
    return result, Figures(
        flops=counter.get_total_flops(),
        params=sum(p.numel() for p in model.parameters()),
        shapes=tuple((key, tuple(t.shape)) for key, t in model.state_dict().items()),
    )


def _measure_original(entry: ModelEntry, input_res, analyzed) -> Figures | None:
    """The unchanged model's figures, or None if they cannot be measured (then no fix is safe)."""
    try:
        return analyze_and_measure(entry.factory(), input_res, entry.name, analyzed)[1]
    except (Exception, SystemExit):
        return None


def _fix(candidate: Candidate, trial: Trial, before: Figures | None, result: Result,
         entry: ModelEntry, siblings) -> Fix:
    """Safe when every parameter shape is unchanged (checkpoints still load), else unsafe."""
    safe = before is not None and before.shapes == trial.figures.shapes
    governed = [entry.name, *(sibling.name for sibling, r in siblings if candidate.governs(r))]
    description = "; ".join(knob.describe() for knob in candidate.knobs)
    return Fix(
        applicability="safe" if safe else "unsafe",
        description=f"{description}: I_min {fmt_size(result.i_min)} -> {fmt_size(trial.i_min)}",
        edits=tuple(_edit(site, new) for site, new in sorted(candidate.changes().items(), key=lambda c: astuple(c[0]))),
        models=tuple(governed),
        i_min_after=trial.i_min,
        flops_before=before.flops if before else None,
        flops_after=trial.figures.flops,
        params_before=before.params if before else None,
        params_after=trial.figures.params,
    )


def _edit(site: Site, new: int) -> Edit:
    return Edit(site.file, site.line, site.column, site.end_line, site.end_column, _source_text(site), str(new))


def _source_text(site: Site) -> str:
    """The literal as written (``0x2`` stays ``0x2`` in ``Edit.old``)."""
    with tokenize.open(site.file) as handle:  # honours a coding cookie; lines end at \r\n, \r, \n
        line = handle.readlines()[site.line - 1]
    return line[site.column - 1:site.end_column - 1]


def _advice(result: Result, literal_free: list[Layer], tried: bool) -> Fix:
    """What to do by hand when no verified literal change exists."""
    unproductive = len(result.unproductive())
    layers = {0: "underutilized layers", 1: "unproductive layer"}.get(
        unproductive, f"{unproductive} unproductive layers")
    structural = f"remove the last {layers} or move pooling earlier (shorter & wider)"
    reasons = []
    if tried:
        reasons.append("no change of one or two stride literals builds, runs and brings I_min below"
                       f" I_res={fmt_size(result.input_res)}")
    if literal_free:
        names = ", ".join(f"'{layer.name}'" for layer in literal_free)
        reasons.append(f"no literal in an analyzed file sets the stride of {names} (computed, or a caller's"
                       " argument): reduce it where it is set")
    if not reasons:
        reasons.append("no downsampling layer to change")
    return Fix(
        applicability="display-only",
        description=f"{'; '.join(reasons)}; or {structural}",
        edits=(),
        models=(result.name,),
        i_min_after=result.i_min,
    )
