"""Which input spatial axes each dimension of a tensor carries: the layout algebra.

A CNN on NCHW tensors keeps H and W in dimensions 2 and 3, but modern networks move
positions around: channels-last blocks permute them, patch merging and space-to-depth
split an axis into blocks and move the offsets into channels, window attention puts the
blocks into the batch and the offsets into a token dimension, ViTs flatten H and W into
one token dimension. The receptive-field arithmetic only needs to know, for an op, which
positions it mixes. So every dimension of a tensor is described by the *pieces* it
carries, merged row-major (outermost first):

- ``Piece(axis, step, size)``: ``size`` positions of input axis ``axis``, ``step`` positions
  apart (in the tensor's own finest positions along that axis). A whole axis of n
  positions is ``(a, 1, n)``; split into blocks of p it becomes a coarse ``(a, p, n/p)``
  and a fine ``(a, 1, p)`` piece.
- ``Piece(FEATURES, 1, n)`` for channels and features, ``Piece(BATCH, 1, n)`` for the batch
  (never mixed, so window partitions may hide blocks in it).

Size-1 pieces carry nothing and are dropped. Layout ops (reshape, permute...) only regroup
pieces. An op that *mixes* along some dimensions sees, along each axis whose pieces it
mixes, a window of the positions those pieces span; if it mixes every piece of an axis it
sees the whole axis. Everything here is framework-free: the torch and Keras front ends map
their ops onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod
from typing import Iterable, Sequence

from rflint.core.receptive_field import NEUTRAL, Window

FEATURES = -1  # channels, features, heads: positions of no input axis
BATCH = -2  # the batch (kept even at size 1); window partitions move blocks into it
TOKENS = -3  # positions plus extra entries (ViT's class token): see ``Piece.parts``


@dataclass(frozen=True)
class Piece:
    """``axis`` is an input spatial axis (0..ndim-1), FEATURES, BATCH or TOKENS. A TOKENS
    piece is a dimension of ``size`` entries holding the positions of ``parts`` and some
    more (a class token concatenated before the patches): it moves only whole, mixing
    along it sees every position of ``parts``, and cutting the extra entries off gives
    ``parts`` back."""

    axis: int
    step: int
    size: int
    parts: tuple = ()

    @property
    def spatial(self) -> bool:
        return self.axis >= 0 or self.axis == TOKENS

    @property
    def axes(self) -> frozenset[int]:
        if self.axis == TOKENS:
            return frozenset(p.axis for p in self.parts)
        return frozenset([self.axis]) if self.axis >= 0 else frozenset()


Dim = tuple[Piece, ...]


class LayoutError(ValueError):
    """A regrouping the pieces cannot express (a reshape that cuts a piece unevenly)."""


@dataclass(frozen=True)
class Layout:
    """The pieces of every dimension of one tensor, and its shape."""

    dims: tuple[Dim, ...]
    shape: tuple[int, ...]

    @classmethod
    def image(cls, shape: Sequence[int], ndim: int, channels_last: bool = False) -> Layout:
        """A batch of images: (N, C, *spatial), or (N, *spatial, C) when channels-last."""
        shape = tuple(shape)
        batch = (pieces(BATCH, 1, shape[0]),)
        if channels_last:
            spatial = tuple(pieces(a, 1, n) for a, n in enumerate(shape[1:1 + ndim]))
            return cls(batch + spatial + (pieces(FEATURES, 1, shape[-1]),), shape)
        spatial = tuple(pieces(a, 1, n) for a, n in enumerate(shape[2:2 + ndim]))
        return cls(batch + (pieces(FEATURES, 1, shape[1]),) + spatial, shape)

    @classmethod
    def plain(cls, shape: Sequence[int]) -> Layout:
        """A tensor that carries no position (a parameter, a constant, a size)."""
        return cls(tuple(pieces(FEATURES, 1, n) for n in shape), tuple(shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    def axes(self, dims: Iterable[int] | None = None) -> set[int]:
        """The spatial axes some of ``dims`` (default: all) carry."""
        chosen = range(self.rank) if dims is None else dims
        return {a for d in chosen for p in self.dims[d] for a in p.axes}

    @property
    def spatial(self) -> bool:
        return bool(self.axes())

    def reshape(self, shape: Sequence[int]) -> Layout:
        """Regroup the pieces row-major into ``shape`` (view, reshape, flatten, squeeze...)."""
        shape = tuple(int(n) for n in shape)
        if prod(shape) != prod(self.shape):
            raise LayoutError(f"cannot reshape {self.shape} to {shape}")
        # A 1-position piece merged or split away carries nothing; the batch marker is kept
        atoms = [p for d in self.dims for p in d if p.size > 1 or p.axis == BATCH]
        out: list[Dim] = []
        for size in shape:
            taken: list[Piece] = []
            need = size
            while atoms and atoms[0].size == 1:  # the batch marker rides with the next dimension
                taken.append(atoms.pop(0))
            while need > 1:
                if not atoms:
                    raise LayoutError(f"cannot reshape {self.shape} to {shape}")
                atom = atoms.pop(0)
                if atom.size <= need:
                    if need % atom.size:
                        raise LayoutError(f"a reshape to {shape} cuts a dimension of {self.shape} unevenly")
                    taken.append(atom)
                    need //= atom.size
                elif atom.size % need == 0 and atom.axis != TOKENS:  # the outer part here, the inner part on
                    inner = atom.size // need
                    taken.append(Piece(atom.axis, atom.step * inner, need))
                    atoms.insert(0, Piece(atom.axis, atom.step, inner))
                    need = 1
                else:
                    raise LayoutError(f"a reshape to {shape} cuts a dimension of {self.shape} unevenly")
            out.append(_merged(taken))
        return Layout(tuple(out), shape)

    def permute(self, order: Sequence[int]) -> Layout:
        order = [o % self.rank for o in order]
        return Layout(tuple(self.dims[o] for o in order), tuple(self.shape[o] for o in order))

    def with_dim(self, dim: int, pieces: Dim, size: int) -> Layout:
        dims, shape = list(self.dims), list(self.shape)
        dims[dim], shape[dim] = pieces, size
        return Layout(tuple(dims), tuple(shape))

    def finest_step(self, axis: int) -> int | None:
        steps = [q.step for d in self.dims for p in d for q in (p.parts or (p,)) if q.axis == axis]
        return min(steps) if steps else None

    def rescaled(self, axis: int, factor: int) -> Layout:
        """Steps of ``axis`` divided by ``factor``: its finest positions are now coarser ones."""
        return Layout(tuple(tuple(Piece(p.axis, p.step // factor, p.size) if p.axis == axis else p for p in d)
                            for d in self.dims), self.shape)


def _merged(dim: list[Piece]) -> Dim:
    """Adjacent blocks of one axis put back together: (a, p, n/p) then (a, 1, p) is (a, 1, n)."""
    merged: list[Piece] = []
    for piece in dim:
        if merged:
            outer = merged[-1]
            if outer.axis == piece.axis and outer.axis != TOKENS and outer.step == piece.step * piece.size:
                merged[-1] = Piece(piece.axis, piece.step, outer.size * piece.size)
                continue
        merged.append(piece)
    return tuple(merged)


def pieces(axis: int, step: int, size: int) -> Dim:
    """The dimension of one piece. A size-1 feature dimension carries nothing; a size-1
    spatial one still holds its axis (a conv on a 1x1 map still grows the field)."""
    return () if size == 1 and axis == FEATURES else (Piece(axis, step, size),)


@dataclass(frozen=True)
class Mixing:
    """What mixing some pieces does along each axis: a window of ``extent`` positions, or
    everything (``whole``)."""

    extent: dict[int, int]
    whole: frozenset[int]


def mixed(layout: Layout, dims: Iterable[int]) -> Mixing:
    """Mixing every position along ``dims``: per axis, the extent of the positions the mixed
    pieces span (sum of (size - 1) * step, plus one), or the whole axis if the mixed pieces
    include its coarsest one: they then span the whole map at any resolution, all of it
    or a grid over it (MaxViT's grid attention, MobileViT's attention across patches)."""
    dims = set(d % layout.rank for d in dims)
    extent: dict[int, int] = {}
    whole = {a for d in dims for p in layout.dims[d] if p.axis == TOKENS for a in p.axes}
    for axis in layout.axes(dims) - whole:
        chosen = [p for d in dims for p in layout.dims[d] if p.axis == axis and p.size > 1]
        spanning = [p for d in layout.dims for p in d if p.axis == axis and p.size > 1]
        if not spanning or max(spanning, key=lambda p: p.step) in chosen:
            whole.add(axis)
        else:
            extent[axis] = sum((p.size - 1) * p.step for p in chosen) + 1
    return Mixing(extent, frozenset(whole))


def mixing_op(mixes: Mixing, out: Layout, ndim: int, source: Layout):
    """The receptive-field op of mixing ``source`` (and the output layout, rescaled).

    Along each axis, the output's positions are its finest remaining pieces: if mixing
    consumed the finest pieces of the input (a reduction over blocks, a Linear over
    channels that hold offsets), the output's positions are coarser and the jump grows by
    that factor; an output that keeps the mixed positions (attention keeps its tokens)
    moves by one position.
    """
    kernel, stride, unbounded = [1] * ndim, [1] * ndim, set(mixes.whole)
    for axis in range(ndim):
        if axis in unbounded:
            continue
        finest_in = source.finest_step(axis)
        finest_out = out.finest_step(axis)
        factor = 1
        if finest_in is not None and finest_out is not None and finest_out > finest_in:
            factor = finest_out // finest_in
            out = out.rescaled(axis, factor)
        stride[axis] = factor
        kernel[axis] = mixes.extent.get(axis, 1)
    return _window_or_neutral(kernel, stride, unbounded, ndim), out


def _window_or_neutral(kernel, stride, unbounded, ndim):
    if not unbounded and all(k == 1 for k in kernel) and all(s == 1 for s in stride):
        return NEUTRAL
    return Window(tuple(kernel), tuple(stride), (1,) * ndim, unbounded=frozenset(unbounded))


def consume_offsets(layout: Layout, ndim: int):
    """Space-to-depth completed: the finest pieces of an axis merged with features in one
    dimension (TResNet's view-permute-view, patch merging, YOLO's Focus) are a p x p window
    with stride p, whatever mixes the channels next. Returns (op, layout) with those pieces
    now plain features, or (NEUTRAL, layout) if there are none."""
    kernel, stride = [1] * ndim, [1] * ndim
    dims = list(layout.dims)
    for i, dim in enumerate(layout.dims):
        if not any(p.axis == FEATURES for p in dim) or any(p.axis == BATCH for p in dim):
            continue  # merged with the batch (and heads) it is a partition into windows, not channels
        kept: list[Piece] = []
        for p in dim:
            if p.axis >= 0 and _is_finest_block(layout, p):
                kernel[p.axis] *= p.size
                kept.append(Piece(FEATURES, 1, p.size))
            else:
                kept.append(p)
        dims[i] = tuple(kept)
    if all(k == 1 for k in kernel):
        return NEUTRAL, layout
    out = Layout(tuple(dims), layout.shape)
    for axis in range(ndim):
        if kernel[axis] > 1:
            out = out.rescaled(axis, kernel[axis])
            stride[axis] = kernel[axis]
    return Window(tuple(kernel), tuple(stride), (1,) * ndim), out


def _is_finest_block(layout: Layout, piece: Piece) -> bool:
    """The piece holds the offsets within blocks: the finest of its axis, whose blocks form
    a dimension of their own, an image grid (else it is the whole axis moved into
    channels, or the blocks went into the batch: a window partition)."""
    if piece.step != layout.finest_step(piece.axis):
        return False
    coarse = Piece(piece.axis, piece.step * piece.size, 0)
    return any(len(d) == 1 and d[0].axis == coarse.axis and d[0].step == coarse.step for d in layout.dims)


def slide(layout: Layout, dims: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
          dilation: Sequence[int], out_sizes: Sequence[int], ndim: int, transposed: bool = False,
          covers: Sequence[bool] = ()) -> tuple[Window, Layout]:
    """A conv or pool whose i-th spatial argument runs along ``dims[i]``, mapped to the input
    axes those dimensions carry (a Conv1d over W leaves H alone). ``covers[i]``: the window
    sees the whole dimension and leaves one position (a fixed ``AvgPool2d(7)`` on a 7x7 map),
    which acts as a global pool along that axis."""
    k, s, d = [1] * ndim, [1] * ndim, [1] * ndim
    unbounded = set()
    out = layout
    for i, dim in enumerate(dims):
        dim %= layout.rank
        carried = [p for p in layout.dims[dim] if p.spatial]
        if not carried:
            out = out.with_dim(dim, pieces(FEATURES, 1, out_sizes[i]), out_sizes[i])
            continue
        if kernel[i] == 1 and stride[i] == 1 and out_sizes[i] == layout.shape[dim]:
            continue  # a 1x1 conv mixes nothing along this dimension, whatever it holds (MobileViTv2's patches)
        carried = [p for p in carried if p.size > 1] or carried[:1]
        others = [p for p in layout.dims[dim] if p.size > 1 and p not in carried]
        if len(carried) > 1 or others or carried[0].step != layout.finest_step(carried[0].axis):
            raise LayoutError("a window along a dimension that holds part of an axis or several axes")
        axis = carried[0].axis
        if i < len(covers) and covers[i]:
            unbounded.add(axis)
        k[axis], s[axis], d[axis] = int(kernel[i]), stride[i], int(dilation[i])
        out = out.with_dim(dim, pieces(axis, 1, out_sizes[i]), out_sizes[i])
    return Window(tuple(k), tuple(s), tuple(d), transposed, frozenset(unbounded)), out


def resample(layout: Layout, dims: Sequence[int], out_sizes: Sequence[int], ndim: int) -> tuple[Window, Layout]:
    """Interpolation along ``dims``: the jump scales by in/out (exact fractions)."""
    stride = [Fraction(1)] * ndim
    out = layout
    for dim, size in zip(dims, out_sizes):
        dim %= layout.rank
        carried = [p for p in layout.dims[dim] if p.spatial]
        if carried:
            if len(carried) > 1:
                raise LayoutError("resampling a dimension that holds several axes")
            stride[carried[0].axis] = Fraction(layout.shape[dim], size)
            out = out.with_dim(dim, pieces(carried[0].axis, 1, size), size)
        else:
            out = out.with_dim(dim, pieces(FEATURES, 1, size), size)
    return Window((1,) * ndim, tuple(stride), (1,) * ndim), out
