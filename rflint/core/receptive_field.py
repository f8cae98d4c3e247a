"""Receptive-field arithmetic on a layer DAG, free of torch so it can be tested exhaustively.

Per spatial axis, a path from the input through layers with effective kernels k_l and
strides s_l has r_l = r_{l-1} + (k_l - 1) * j_{l-1} and jump j_l = j_{l-1} * s_l. A node
reached by many paths keeps, per axis, only the (r, j) pairs that can still end up smallest
(or largest) downstream: because every later layer adds a non-negative multiple of j to r,
a pair with both r and j at most another's always stays at most it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from fractions import Fraction
from typing import NamedTuple, Sequence

Pair = tuple[int | Fraction, int | Fraction]  # (receptive field r, jump j) in input pixels; exact


@dataclass(frozen=True)
class Window:
    """A spatial op: a sliding window per axis (conv, pooling) or a resampling.

    ``stride`` may be a Fraction, so upsampling by f is ``Fraction(1, f)``; whole strides
    are kept as ints, whose arithmetic is ~10x faster than Fraction's and exact all the
    same. A transposed conv keeps its integer stride and sets ``transposed`` (its jump is
    divided by the stride). ``unbounded`` names the axes along which the op sees everything
    (attention over whole rows, a pool covering the whole map on one axis); a node unbounded
    along any axis has no bounded field.
    """

    kernel: tuple[int, ...]
    stride: tuple[int | Fraction, ...]
    dilation: tuple[int, ...]
    transposed: bool = False
    unbounded: frozenset[int] = frozenset()

    same_on_every_axis: bool = dataclass_field(init=False, repr=False, compare=False)  # one computation serves all axes

    def __post_init__(self) -> None:
        whole = tuple(s if type(s) is int else int(s) if Fraction(s).denominator == 1 else Fraction(s) for s in self.stride)
        object.__setattr__(self, "stride", whole)
        same = not self.unbounded and all(len(set(v)) <= 1 for v in (self.kernel, whole, self.dilation))
        object.__setattr__(self, "same_on_every_axis", same)

    def apply(self, axis: int, pair: Pair) -> Pair:
        r, j = pair
        s = self.stride[axis]
        grow = self.dilation[axis] * (self.kernel[axis] - 1)
        if self.transposed:
            new_j = Fraction(j) / s
            return r + grow * new_j, new_j
        return r + grow * j, j * s


class _Global:
    """Sees the whole input: global/adaptive pooling, flattening space, attention."""

    def __repr__(self) -> str:
        return "GLOBAL"


GLOBAL = _Global()
NEUTRAL = None  # mixes no positions: k = 1, s = 1


@dataclass(frozen=True)
class Node:
    """One node of the DAG; ``inputs`` index earlier nodes (topological order).

    ``edge_ops``, if given, holds one op per input, applied to that input's pairs before
    they merge: attention reads its keys through a window, its queries directly.
    """

    inputs: tuple[int, ...] = ()
    op: Window | _Global | None = NEUTRAL
    is_input: bool = False
    edge_ops: tuple | None = None


class Field(NamedTuple):
    """Receptive field of one node, per axis; None where no bounded path reaches it.

    ``r_in_min`` is the smallest field of the node's input (r_{l-1,min}), which decides
    whether the node can still add spatial context. A named tuple: one is made per node
    of every analysed graph, three times faster than a frozen dataclass.
    """

    r_min: tuple[Fraction, ...] | None
    r_max: tuple[Fraction, ...] | None
    r_in_min: tuple[Fraction, ...] | None
    jump_min: tuple[Fraction, ...] | None
    jump_max: tuple[Fraction, ...] | None
    unbounded: bool  # some path passes through a GLOBAL op

    @property
    def bounded(self) -> bool:
        return self.r_min is not None


def pareto_min(pairs: set[Pair]) -> frozenset[Pair]:
    """Pairs not dominated from below: no other pair has r and j both <=."""
    if len(pairs) == 1:  # a chain: nothing to compare
        return frozenset(pairs)
    return frozenset(
        p for p in pairs if not any(q != p and q[0] <= p[0] and q[1] <= p[1] for q in pairs)
    )


def pareto_max(pairs: set[Pair]) -> frozenset[Pair]:
    """Pairs not dominated from above: no other pair has r and j both >=."""
    if len(pairs) == 1:  # a chain: nothing to compare
        return frozenset(pairs)
    return frozenset(
        p for p in pairs if not any(q != p and q[0] >= p[0] and q[1] >= p[1] for q in pairs)
    )


def propagate(nodes: Sequence[Node], ndim: int) -> list[Field]:
    """Exact r_min / r_max of every node over all paths from the input nodes.

    A node's pairs are kept as one Pareto set standing for every axis while the axes agree
    (square kernels on a square input: most of a CNN), and as one set per axis from the
    first op that differs between axes; the first form computes a 2-D net's fields once
    instead of twice, with the same exact arithmetic.
    """
    one = (1,) * ndim
    lows: list[Sets] = []
    highs: list[Sets] = []
    unbounded: list[bool] = []
    reached: list[bool] = []  # some path from an input node arrives here
    fields: list[Field] = []
    known: dict[tuple, Field] = {}  # a chain of neutral nodes shares one field
    for node in nodes:
        inputs, edge_ops = node.inputs, node.edge_ops
        edges_see_all = False
        if node.is_input:
            in_low = in_high = _START
            is_reached, from_unbounded, r_in = True, False, one
        elif edge_ops is None and len(inputs) == 1:  # already Pareto sets: most nodes pass them on
            only = inputs[0]
            in_low, in_high = lows[only], highs[only]
            is_reached, from_unbounded, r_in = reached[only], unbounded[only], fields[only].r_min
        else:
            if edge_ops is None:
                in_low = _union([lows[i] for i in inputs], ndim)
                in_high = _union([highs[i] for i in inputs], ndim)
            else:  # each input through its own op first, then merged
                edges = [_edge(op, lows[i], highs[i], ndim) for i, op in zip(inputs, edge_ops)]
                in_low = _each_axis(pareto_min, _union([low for low, _ in edges], ndim))
                in_high = _each_axis(pareto_max, _union([high for _, high in edges], ndim))
                edges_see_all = any(_sees_all(op) for op in edge_ops)
            is_reached = any(reached[i] for i in inputs)
            from_unbounded = any(unbounded[i] for i in inputs)
            before = in_low if edge_ops is None else _own_input(inputs, edge_ops, lows, ndim)
            r_in = _ends(before, min, ndim)[0] if _bounded(before) else None
        op = node.op
        if op is GLOBAL:
            low = high = _EMPTY
            sees_all = True
        elif isinstance(op, Window):
            low, high = _through(op, in_low, pareto_min, ndim), _through(op, in_high, pareto_max, ndim)
            sees_all = bool(op.unbounded) or edges_see_all
        else:
            if len(inputs) <= 1 or edge_ops is not None:
                low, high = in_low, in_high
            else:
                low, high = _each_axis(pareto_min, in_low), _each_axis(pareto_max, in_high)
            sees_all = edges_see_all
        is_unbounded = (sees_all and is_reached) or from_unbounded
        lows.append(low)
        highs.append(high)
        unbounded.append(is_unbounded)
        reached.append(is_reached)
        key = (in_low if edge_ops is None else before, low, high, is_unbounded)  # what the field is made of
        field = known.get(key)
        if field is None:
            field = known[key] = _field(r_in, low, high, is_unbounded, ndim)
        fields.append(field)
    return fields


def _own_input(inputs, edge_ops, lows: list, ndim: int) -> tuple:
    """Per axis, the pairs a layer with per-input ops reads itself: those of the inputs
    whose op does not see that axis whole (r_in_min is measured before the edge ops)."""
    return tuple(frozenset().union(*(_axes(lows[i], ndim)[a] for i, op in zip(inputs, edge_ops) if not _sees_axis(op, a)))
                 for a in range(ndim))


def _sees_axis(op, axis: int) -> bool:
    return op is GLOBAL or (isinstance(op, Window) and axis in op.unbounded)


def _sees_all(op) -> bool:
    return op is GLOBAL or (isinstance(op, Window) and bool(op.unbounded))


def _edge(op, low, high, ndim: int):
    """The (low, high) Pareto sets after ``op`` (an axis it sees whole keeps no bounded pair)."""
    if op is GLOBAL:
        return _EMPTY, _EMPTY
    if not isinstance(op, Window):
        return low, high
    return _through(op, low, pareto_min, ndim), _through(op, high, pareto_max, ndim)


# A node's pairs: one frozenset for every axis, or a tuple of one frozenset per axis.
Sets = "frozenset[Pair] | tuple[frozenset[Pair], ...]"
_START = frozenset([(1, 1)])
_EMPTY: frozenset = frozenset()


def _axes(sets, ndim: int) -> tuple:
    return sets if type(sets) is tuple else (sets,) * ndim


def _each_axis(function, sets):
    return function(sets) if type(sets) is frozenset else tuple(function(s) for s in sets)


def _union(per_input: list, ndim: int):
    """The pairs arriving from every input of a merge."""
    if all(type(sets) is frozenset for sets in per_input):
        return frozenset().union(*per_input)
    return tuple(frozenset().union(*axis) for axis in zip(*(_axes(sets, ndim) for sets in per_input)))


def _through(op: Window, sets, pareto, ndim: int):
    """The Pareto sets after ``op``."""
    if type(sets) is frozenset and op.same_on_every_axis:
        return _apply(op, 0, sets, pareto)
    return tuple(_EMPTY if a in op.unbounded else _apply(op, a, s, pareto) for a, s in enumerate(_axes(sets, ndim)))


def _apply(op: Window, axis: int, pairs: frozenset, pareto) -> frozenset:
    if len(pairs) == 1:  # a chain: nothing to compare
        for pair in pairs:
            return frozenset((op.apply(axis, pair),))
    return pareto({op.apply(axis, p) for p in pairs})


def _field(r_in, low, high, is_unbounded: bool, ndim: int) -> Field:
    """The node's field; ``r_in`` is its input's r_min (None when no bounded path reaches it)."""
    if not _bounded(low):
        return Field(None, None, None, None, None, is_unbounded)
    r_min, jump_min = _ends(low, min, ndim)
    r_max, jump_max = _ends(high, max, ndim)
    return Field(r_min, r_max, r_in, jump_min, jump_max, is_unbounded)


def _bounded(sets) -> bool:
    """Some bounded path arrives, on every axis."""
    return bool(sets) if type(sets) is frozenset else all(sets)


def _ends(sets, pick, ndim: int) -> tuple[tuple, tuple]:
    """(smallest or largest r, same for j) per axis; a chain's single pair needs no search."""
    if type(sets) is frozenset:
        if len(sets) == 1:
            for r, j in sets:
                return (r,) * ndim, (j,) * ndim
        return (pick(r for r, _ in sets),) * ndim, (pick(j for _, j in sets),) * ndim
    ends = [_ends(s, pick, 1) for s in sets]
    return tuple(r for (r,), _ in ends), tuple(j for _, (j,) in ends)


def pixels(values: Sequence[Fraction]) -> tuple[int, ...]:
    """Whole input pixels covered: a fractional field (transposed convs) rounds up."""
    for v in values:
        if type(v) is not int:
            return tuple(math.ceil(v) for v in values)
    return tuple(values)


def input_limits(fields: Sequence[Field], layers: Sequence[int], ndim: int):
    """(I_min, I_max) per axis: the max of r_min and of r_max over bounded layers."""
    bounded = [fields[i] for i in layers if fields[i].bounded]
    if not bounded:
        return (0,) * ndim, (0,) * ndim
    i_min = tuple(max(f.r_min[a] for f in bounded) for a in range(ndim))
    i_max = tuple(max(f.r_max[a] for f in bounded) for a in range(ndim))
    return pixels(i_min), pixels(i_max)


def is_underutilized(field: Field, input_res: Sequence[int]) -> bool:
    """r_{l,min} >= I_res on some axis: the layer grows its field past the image border."""
    return field.bounded and any(r >= res for r, res in zip(field.r_min, input_res))


def is_unproductive(field: Field, input_res: Sequence[int]) -> bool:
    """r_{l-1,min} >= I_res on every axis: every path already sees the whole image."""
    return (
        field.bounded
        and field.r_in_min is not None
        and all(r >= res for r, res in zip(field.r_in_min, input_res))
    )
