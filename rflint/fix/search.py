"""Find the stride / patch-size literal change that makes a model fully utilized.

The paper's Section 5 refinements: reduce downsampling (a stride 2 becomes 1, a 4x4/4
patchify stem becomes 2x2/2), make the smallest change, bring I_min below I_res and keep
it as close to I_res as possible. rflint cannot trust arithmetic on the old graph for this
(a stride of 1 can switch on a residual shortcut, which adds a shorter path), so every
candidate is verified: the analyzed files are re-imported with the literal overridden in
memory, the model is rebuilt on the meta device and re-analysed. No file is touched here.

Rebuilds are what a search costs, so candidates are first ranked by that arithmetic (the
captured graph with the literals' new values, ``with_literals``: microseconds) and verified
in ranked order, stopping as soon as the best verified candidate is preferred to anything an
unverified one is predicted to reach: about one rebuild per model reading the literal.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import os
import sys
import tokenize
import types
from dataclasses import astuple, dataclass, field, replace
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from torch import nn

from rflint.frontends.torch.analysis import analyze, analyze_built, garbage_collection_paused
from rflint.frontends.torch.build import build
from rflint.core.graph import analyze_graph, with_literals
from rflint.core.diagnostics import Edit, Fix
from rflint.frontends.discover import ModelEntry
from rflint.fix import DEFAULT_MAX_FLOPS_RATIO
from rflint.fix.interface import Interface, interface_change
from rflint.source.literals import import_file, package_siblings
from rflint.fix.readers import Position, Reader, Readers, position, reader_files
from rflint.core.layers import Layer, Site
from rflint.core.result import Result
from rflint.core.rules.base import fmt_size

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

    def positions(self) -> frozenset[Position]:
        return frozenset(map(position, self.changes()))


@dataclass(frozen=True)
class Figures:
    """Cost of a model at the input resolution; ``shapes`` decide checkpoint compatibility,
    ``interface`` what the model returns (see ``interface.py``).

    FLOPs as FlopCounterMode counts them (2 per multiply-accumulate; the paper counts MACs),
    counted by the capture (``frontends/torch/flops.py``).
    """

    flops: int
    params: int
    shapes: tuple[tuple[str, tuple[int, ...]], ...]
    interface: Interface | None = None


@dataclass(frozen=True)
class Trial:
    """A model rebuilt with some literals overridden; ``valid`` when it built, ran and
    became fully utilized. ``error`` says why it did not build or run."""

    valid: bool
    i_min: tuple[int, ...] | None = None
    figures: Figures | None = None
    error: str | None = None


class OutOfTime(Exception):
    """Raised by a ``progress`` callback whose deadline has passed: the search stops before
    its next rebuild (the caller gives the model no fix and says why)."""


# (file, model, overrides) -> Trial, kept for one file's models; no overrides: the unchanged model's Figures.
Trials = dict[tuple[str, str, frozenset], "Trial | Figures | None"]
UNCHANGED = frozenset()


@dataclass
class Verdict:
    """A candidate that works for the model: applicable, or ``blocked`` (why it is advice)."""

    candidate: Candidate
    trial: Trial
    readers: list[Reader]
    blocked: str | None = None


class FixSearch:
    """The search for one model: its candidates, each verified on the model and on every
    model that reads the candidate's literals (``Readers``), with trials shared through
    ``trials`` and the unchanged models' figures measured once."""

    def __init__(self, entry: ModelEntry, result: Result, job, readers: Readers, rebuilt: frozenset[str],
                 trials: Trials, progress: Callable[[str], None] | None, frontend: Rebuilder):
        self.entry, self.result, self.job, self.frontend = entry, result, job, frontend
        self.readers, self.rebuilt, self.trials, self.progress = readers, rebuilt, trials, progress
        self.max_flops_ratio = getattr(job, "max_flops_ratio", DEFAULT_MAX_FLOPS_RATIO)
        self.interface_change: dict[frozenset, str] = {}  # candidate overrides -> why it was rejected though it worked
        self.exhaustive = getattr(job, "exhaustive_fix_search", False)
        self.predictions: dict[frozenset, tuple[int, ...]] = {}  # candidate overrides -> predicted I_min
        self.last_import: dict[tuple[str, frozenset], object] = {}  # (file, overrides) -> the module, for the next trial

    def trial(self, model: ModelEntry, input_res, candidate: Candidate) -> Trial:
        key = (model.file, model.name, candidate.overrides())
        if key not in self.trials:
            if self.progress:
                self.progress(f"{model.name} with {'; '.join(knob.describe() for knob in candidate.knobs)}")
            self.trials[key] = _rebuild_and_analyze(model, input_res, dict(candidate.overrides()), self.rebuilt,
                                                    self.frontend, self.last_import)
            # A trial re-imports whole packages: their modules and classes are cyclic garbage
            # that the analysis's paused collector leaves, hundreds of MB over a package's search.
            gc.collect()
        return self.trials[key]

    def original(self, model: ModelEntry, input_res) -> Figures | None:
        """The unchanged model's figures, measured once for all the searches of a file
        (EfficientNet B0..B7 each verify a change on all eight)."""
        key = (model.file, model.name, UNCHANGED)
        if key not in self.trials:
            if self.progress:
                self.progress(f"{model.name} unchanged (its FLOPs and interface)")
            self.trials[key] = _measure_original(model, input_res, self.rebuilt, self.frontend)
        return self.trials[key]

    def interface_problem(self, model: ModelEntry, input_res, trial: Trial) -> str | None:
        """Why a fully utilized trial changes what the model returns (see ``interface.py``)."""
        before = self.original(model, input_res)
        if before is None:
            return "the unchanged model cannot be measured"
        return interface_change(before.interface, trial.figures.interface, len(trial.i_min))

    def cost_problem(self, model: ModelEntry, input_res, trial: Trial) -> str | None:
        """The FLOPs ratio when it exceeds the budget (``max-flops-ratio``)."""
        before = self.original(model, input_res)
        ratio = trial.figures.flops / before.flops if before is not None and before.flops else 1.0
        if ratio > self.max_flops_ratio:
            return f"FLOPs x{ratio:.2f} > max-flops-ratio {self.max_flops_ratio:g}"
        return None

    def verdict(self, candidate: Candidate) -> Verdict | None:
        """None when the candidate does not work for the model itself (no build, I_min not
        below I_res, a changed interface); else a Verdict saying whether it is blocked:
        by a reader without an RF003 (never changed), by its cost, or by an RF003 reader
        for which it does not work."""
        res = self.result.input_res
        own = self.trial(self.entry, res, candidate)
        if not own.valid:
            return None
        change = self.interface_problem(self.entry, res, own)
        if change:
            self.interface_change[candidate.overrides()] = f"{'; '.join(k.describe() for k in candidate.knobs)}: {change}"
            return None
        readers = self.readers.of(candidate.positions(), besides=self.entry)
        healthy = [reader for reader in readers if not reader.needs_fix]
        if healthy:
            return Verdict(candidate, own, readers, f"it would also change {_models_without_rf003(healthy)}")
        cost = self.cost_problem(self.entry, res, own)
        if cost:
            return Verdict(candidate, own, readers, cost)
        # Cheap readers first: a change one of them rejects then costs no expensive rebuild.
        for reader in sorted(readers, key=lambda r: len(r.result.layers)):
            reader_res = reader.result.input_res
            trial = self.trial(reader.entry, reader_res, candidate)
            problem = (self.interface_problem(reader.entry, reader_res, trial)
                       or self.cost_problem(reader.entry, reader_res, trial) if trial.valid
                       else trial.error or "I_min stays at or above I_res")
            if problem:
                return Verdict(candidate, own, readers, f"it does not work for {reader.entry.name}: {problem}")
        return Verdict(candidate, own, readers)

    def verdicts(self, knobs: list[Knob]) -> list[Verdict]:
        """Working candidates of the smallest size that has any, best first (``_preference``):
        the best of them all, and the others verified on the way to it (every working one
        when ``job.exhaustive_fix_search`` asks to verify every candidate)."""
        for candidates in _candidates_by_size(knobs):
            found = self.all_verdicts(candidates) if self.exhaustive else self.ranked_verdicts(candidates)
            if found:
                return sorted(found, key=_preference)
        return []

    def all_verdicts(self, candidates: list[Candidate]) -> list[Verdict]:
        return [v for v in map(self.verdict, candidates) if v is not None]

    def interface_changes(self, knobs: list[Knob]) -> list[str]:
        """Why candidates that worked otherwise were rejected, in candidate order (not the
        order they were verified in, which the ranking decides)."""
        return [self.interface_change[key] for candidates in _candidates_by_size(knobs) for c in candidates
                if (key := c.overrides()) in self.interface_change]

    def ranked_verdicts(self, candidates: list[Candidate]) -> list[Verdict]:
        """Verify candidates best predicted first; stop once a verified one is preferred to
        the next one's prediction, which then cannot be the best: a new value that changes
        the model beyond its strides (a shortcut switched on) adds paths, which only lower
        I_min, so a prediction is never worse than the truth."""
        ranked = sorted(((self.predicted_preference(c), c) for c in candidates), key=lambda pair: pair[0])
        found: list[Verdict] = []
        for predicted, candidate in ranked:
            if found and min(map(_preference, found)) < predicted:
                break
            verdict = self.verdict(candidate)
            if verdict is not None:
                found.append(verdict)
        return found

    def predicted_preference(self, candidate: Candidate) -> tuple:
        """``_preference`` at its best for what the captured graph predicts: the FLOPs as 0
        (candidates predicted equal are all verified), blocked only by a reader without an
        RF003 (certain), and I_min as predicted, or just below I_res where the prediction
        leaves it at or above (a shortcut switched on may still bring it below)."""
        blocked = any(not r.needs_fix for r in self.readers.of(candidate.positions(), besides=self.entry))
        best = tuple(r - 1 for r in self.result.input_res)
        predicted = self.predicted_i_min(candidate)
        i_min = predicted if all(m <= b for m, b in zip(predicted, best)) else best
        return blocked, tuple(-m for m in i_min), 0

    def predicted_i_min(self, candidate: Candidate) -> tuple[int, ...]:
        """I_min on the captured graph with the candidate's values; without a graph (a
        result read back from a worker), I_res, which ranks it as the best possible."""
        key = candidate.overrides()
        if key not in self.predictions:
            graph = self.result.graph
            self.predictions[key] = self.result.input_res if graph is None else analyze_graph(
                with_literals(graph, candidate.changes()), self.result.input_res, name=self.result.name).i_min
        return self.predictions[key]


def _preference(verdict: Verdict) -> tuple:
    """Applicable before advice, then I_min as close below I_res as possible, then cheaper."""
    return verdict.blocked is not None, tuple(-m for m in verdict.trial.i_min), verdict.trial.figures.flops


def _models_without_rf003(readers: Sequence[Reader]) -> str:
    """``vgg11, vgg13 (vgg.py) and ssd300_vgg16 (ssd.py, not analysable), which have no RF003``."""
    groups: dict[tuple[str, bool], list[str]] = {}
    for reader in readers:
        groups.setdefault((os.path.basename(reader.entry.file), reader.result is None), []).append(reader.entry.name)
    shown = [f"{', '.join(names)} ({file}{', not analysable' if unanalysed else ''})"
             for (file, unanalysed), names in groups.items()]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    return f"{listed}, which {'has' if len(readers) == 1 else 'have'} no RF003"


def search_fixes(
    entry: ModelEntry,
    result: Result,
    job,
    siblings: Sequence[tuple[ModelEntry, Result | None]] = (),
    trials: Trials | None = None,
    progress: Callable[[str], None] | None = None,
    frontend: Rebuilder | None = None,
) -> tuple[Fix, ...]:
    """Verified stride / patch fixes for a model that is not fully utilized, best first.

    A candidate literal must be valid for every model that reads it: ``siblings`` (the
    file's other models; None for one that built but was not analysed) and the models of
    the project's files importing the literal's file. One that changes a model without an
    RF003, or costs more than ``job.max_flops_ratio``, is display-only advice naming why.
    Pass the same ``trials`` dict for every model of a file so a shared literal is not
    rebuilt once per model. ``progress`` hears of each rebuild before it starts (so that a
    timeout names it) and may stop the search there by raising ``OutOfTime``, which
    propagates. Without a candidate that works for the model itself, one display-only
    advice. ``frontend`` rebuilds and measures the model (torch unless a Keras model says
    otherwise).
    """
    knobs, literal_free = downsampling_knobs(result)
    literal_files = {site.file for knob in knobs for site in knob.changes()}
    files = reader_files(literal_files) | {entry.file}
    # A package's modules register into each other (torchvision's ``register_model``):
    # a trial re-imports the whole package folder of every file involved, never one module alone.
    rebuilt = frozenset(job.analyzed).union(*(package_siblings(file) for file in files))
    positions = frozenset(p for knob in knobs for p in map(position, knob.changes()))
    with analyzed_modules_restored(rebuilt):
        readers = Readers(files if knobs else (), rebuilt, positions, _resolution_for(job, result),
                          [(entry, result), *siblings], getattr(job, "explicit", {}), progress)
        search = FixSearch(entry, result, job, readers, rebuilt, {} if trials is None else trials, progress,
                           frontend or Rebuilder())
        verdicts = search.verdicts(knobs)
        if not verdicts:
            return (_advice(result, literal_free, tried=bool(knobs), interface_changes=search.interface_changes(knobs)),)
        before = search.original(entry, result.input_res)
        return tuple(_fix(v, before, result, entry, search) for v in verdicts)


def _resolution_for(job, result: Result) -> Callable[[ModelEntry], object]:
    """How a reader's resolution is chosen: the worker's rule, else the searched model's."""
    return getattr(job, "resolution_for", None) or (lambda entry: (result.input_res, "option"))


def search_file_fixes(analysed: Sequence[tuple[ModelEntry, Result]], job) -> dict[str, tuple[Fix, ...]]:
    """Fixes for every model of one file that is not fully utilized, each checked against
    the others (shared literals), with rebuilds shared between them."""
    trials: Trials = {}
    return {
        entry.name: search_fixes(entry, result, job, [s for s in analysed if s[0] is not entry], trials)
        for entry, result in analysed
        if not result.fully_utilized()
    }


def fixes_of(result: Result) -> tuple[Fix, ...]:
    """``Result.fixes()``: re-import the factory's file with literal provenance, re-analyze,
    and search verified fixes there (the file on disk is never touched)."""
    factory = result.factory
    kwargs = dict(factory.keywords) if isinstance(factory, functools.partial) else {}
    target = factory.func if isinstance(factory, functools.partial) else factory
    if result.source is None or not hasattr(target, "__name__"):
        raise ValueError("fixes() needs a model analyzed from a factory or class defined in a file")
    file = result.source.file
    analyzed = package_siblings(file)
    with analyzed_modules_restored(analyzed):  # the caller's modules stay the ones it imported
        fresh = getattr(import_file(file, analyzed), target.__name__)
        entry = ModelEntry(target.__name__, file, result.source.line, result.source.column, "factory", fresh, kwargs)
        instrumented = analyze(entry.factory(), result.input_res, name=result.name, analyzed_files=analyzed)
        return search_fixes(entry, instrumented, types.SimpleNamespace(analyzed=analyzed))


def without_building_blocks(models: Sequence[tuple[ModelEntry, Result | None, frozenset[str]]]
                            ) -> list[tuple[ModelEntry, Result | None]]:
    """(entry, result) of the models that are not building blocks of another model in
    ``models`` (entry, result, component types): a class another model is built from is
    checked through that model, not as a sibling of its own."""
    blocks = {c for entry, _, components in models for c in components if c != entry.type_name}
    return [(entry, result) for entry, result, _ in models if entry.type_name not in blocks]


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


class Rebuilder:
    """How a front end builds, analyses and measures a model for fix trials: torch's here.

    ``overriding`` splits the overrides into literal values for ``import_file`` and a
    context for changes no literal expresses (Keras inserts ``strides=`` into a pool call).
    """

    def overriding(self, overrides: Mapping) -> tuple[Mapping, contextlib.AbstractContextManager]:
        return overrides, contextlib.nullcontext()

    def analyze_and_measure(self, factory, input_res, name: str, analyzed):
        return analyze_and_measure(factory, input_res, name, analyzed)

    def edit(self, site: Site, new: int) -> Edit:
        return _edit(site, new)


def _rebuild_and_analyze(entry: ModelEntry, input_res, overrides: Mapping, analyzed, frontend: Rebuilder,
                         last_import: dict) -> Trial:
    """Re-import the analyzed files with ``overrides``, rebuild, re-trace and re-analyse.

    ``last_import`` holds the module of the previous trial: a candidate verified on the
    models of one file (EfficientNet B0..B7) imports the package once for all of them.

    Any failure (the model no longer builds, a residual add whose sides no longer match)
    rejects the change; so does an I_min still at or above I_res.
    """
    try:
        literals, context = frontend.overriding(overrides)
        with context:
            key = (entry.file, frozenset(overrides.items()))
            if key not in last_import:
                last_import.clear()
                last_import[key] = import_file(entry.file, analyzed, literals)
            factory = entry.factory_in(last_import[key])
            result, figures = frontend.analyze_and_measure(factory, input_res, entry.name, analyzed)
    except (Exception, SystemExit) as error:
        first_line = str(error).strip().partition("\n")[0]
        return Trial(valid=False, error=f"{type(error).__name__}: {first_line}")
    return Trial(result.fully_utilized(), result.i_min, figures)


def analyze_and_measure(factory: Callable[[], nn.Module], input_res, name: str, analyzed) -> tuple[Result, Figures]:
    """Build on the meta device and analyse; the analysis's capture also counts the FLOPs
    and records the interface."""
    built = build(factory, analyzed)
    model = built.model.to("meta")
    with garbage_collection_paused():
        result = analyze_built(replace(built, model=model, mode="meta"), input_res, name=name)
    return result, measured_as_built(model, result)


def measured_as_built(model: nn.Module, result: Result) -> Figures:
    """The figures of a model as built and captured: a model the lint analysed needs no
    rebuild to be measured unchanged (a third of a search's rebuilds did that)."""
    graph = result.graph
    return Figures(
        flops=graph.flops,
        params=sum(p.numel() for p in model.parameters()),
        shapes=tuple((key, tuple(t.shape)) for key, t in model.state_dict().items()),
        interface=Interface(graph.outputs, graph.global_ops),
    )


def _measure_original(entry: ModelEntry, input_res, analyzed, frontend: Rebuilder) -> Figures | None:
    """The unchanged model's figures, or None if they cannot be measured (then no fix is safe)."""
    try:
        return frontend.analyze_and_measure(entry.factory(), input_res, entry.name, analyzed)[1]
    except (Exception, SystemExit):
        return None


def _fix(verdict: Verdict, before: Figures | None, result: Result, entry: ModelEntry, search: FixSearch) -> Fix:
    """Safe when every changed model keeps its parameter shapes (checkpoints still load),
    else unsafe; display-only advice, with the edits, when the verdict is blocked."""
    candidate, trial = verdict.candidate, verdict.trial
    changed = [(entry, before, trial)] + [
        (r.entry, search.original(r.entry, r.result.input_res), search.trial(r.entry, r.result.input_res, candidate))
        for r in verdict.readers if r.needs_fix and verdict.blocked is None]
    safe = all(b is not None and b.shapes == t.figures.shapes for _, b, t in changed)
    changed_models = dict.fromkeys([(entry.name, entry.file), *((r.entry.name, r.entry.file) for r in verdict.readers)])
    description = "; ".join(knob.describe() for knob in candidate.knobs)
    description += f": I_min {fmt_size(result.i_min)} -> {fmt_size(trial.i_min)}"
    if verdict.blocked:
        applicability, description = "display-only", f"{description}; not applied: {verdict.blocked}"
    else:
        applicability = "safe" if safe else "unsafe"
    return Fix(
        applicability=applicability,
        description=description,
        edits=tuple(search.frontend.edit(site, new)
                    for site, new in sorted(candidate.changes().items(), key=lambda c: astuple(c[0]))),
        models=tuple(name for name, _ in changed_models),
        model_files=tuple(file for _, file in changed_models),
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


def _advice(result: Result, literal_free: list[Layer], tried: bool, interface_changes: Sequence[str] = ()) -> Fix:
    """What to do by hand when no verified literal change exists."""
    unproductive = len(result.unproductive())
    layers = {0: "underutilized layers", 1: "unproductive layer"}.get(
        unproductive, f"{unproductive} unproductive layers")
    structural = f"remove the last {layers} or move pooling earlier (shorter & wider)"
    reasons = []
    if tried:
        reasons.append("no change of one or two stride literals builds, runs and brings I_min below"
                       f" I_res={fmt_size(result.input_res)}"
                       + (f" without changing what the model returns ({interface_changes[0]})" if interface_changes else ""))
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
