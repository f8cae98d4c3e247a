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
from fractions import Fraction
from typing import Sequence

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

    def __post_init__(self) -> None:
        whole = tuple(s if type(s) is int else int(s) if Fraction(s).denominator == 1 else Fraction(s) for s in self.stride)
        object.__setattr__(self, "stride", whole)

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


@dataclass(frozen=True)
class Field:
    """Receptive field of one node, per axis; None where no bounded path reaches it.

    ``r_in_min`` is the smallest field of the node's input (r_{l-1,min}), which decides
    whether the node can still add spatial context.
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
    """Exact r_min / r_max of every node over all paths from the input nodes."""
    one = (1, 1)
    lows: list[tuple[frozenset[Pair], ...]] = []
    highs: list[tuple[frozenset[Pair], ...]] = []
    unbounded: list[bool] = []
    reached: list[bool] = []  # some path from an input node arrives here
    fields: list[Field] = []
    known: dict[tuple, Field] = {}  # a chain of neutral nodes shares one field
    for node in nodes:
        if node.is_input:
            in_low = in_high = tuple(frozenset([one]) for _ in range(ndim))
        elif node.edge_ops is not None:
            raw_low = tuple(frozenset().union(*(lows[i][a] for i, op in zip(node.inputs, node.edge_ops)
                                                if not _sees_axis(op, a))) for a in range(ndim))
            edges = [_through(op, lows[i], highs[i], ndim) for i, op in zip(node.inputs, node.edge_ops)]
            in_low = tuple(pareto_min(set().union(*(low[a] for low, _ in edges))) for a in range(ndim))
            in_high = tuple(pareto_max(set().union(*(high[a] for _, high in edges))) for a in range(ndim))
        elif len(node.inputs) == 1:  # already Pareto sets: most nodes pass them on unchanged
            in_low, in_high = lows[node.inputs[0]], highs[node.inputs[0]]
        else:
            in_low = tuple(frozenset().union(*(lows[i][a] for i in node.inputs)) for a in range(ndim))
            in_high = tuple(frozenset().union(*(highs[i][a] for i in node.inputs)) for a in range(ndim))
        is_reached = node.is_input or any(reached[i] for i in node.inputs)
        op = node.op
        sees_all = _sees_all(op) or any(_sees_all(e) for e in node.edge_ops or ())
        is_unbounded = (sees_all and is_reached) or any(unbounded[i] for i in node.inputs)
        if op is GLOBAL or isinstance(op, Window):
            low, high = _through(op, in_low, in_high, ndim)
        elif len(node.inputs) <= 1 or node.edge_ops is not None:
            low, high = in_low, in_high
        else:
            low = tuple(pareto_min(set(s)) for s in in_low)
            high = tuple(pareto_max(set(s)) for s in in_high)
        lows.append(low)
        highs.append(high)
        unbounded.append(is_unbounded)
        reached.append(is_reached)
        before = raw_low if node.edge_ops is not None and not node.is_input else in_low  # the layer's own input
        key = (before, low, high, is_unbounded)
        field = known.get(key)
        if field is None:
            field = known[key] = _field(before, low, high, is_unbounded)
        fields.append(field)
    return fields


def _sees_axis(op, axis: int) -> bool:
    return op is GLOBAL or (isinstance(op, Window) and axis in op.unbounded)


def _sees_all(op) -> bool:
    return op is GLOBAL or (isinstance(op, Window) and bool(op.unbounded))


def _through(op, low, high, ndim: int):
    """The Pareto sets of pairs after ``op`` (an axis it sees whole keeps no bounded pair)."""
    if op is GLOBAL:
        return tuple(frozenset() for _ in range(ndim)), tuple(frozenset() for _ in range(ndim))
    if not isinstance(op, Window):
        return low, high
    return (
        tuple(frozenset() if a in op.unbounded else pareto_min({op.apply(a, p) for p in low[a]}) for a in range(ndim)),
        tuple(frozenset() if a in op.unbounded else pareto_max({op.apply(a, p) for p in high[a]}) for a in range(ndim)),
    )


def _field(in_low, low, high, is_unbounded: bool) -> Field:
    if not all(low):
        return Field(None, None, None, None, None, is_unbounded)
    r_in = tuple(min(r for r, _ in s) for s in in_low) if all(in_low) else None
    return Field(
        r_min=tuple(min(r for r, _ in s) for s in low),
        r_max=tuple(max(r for r, _ in s) for s in high),
        r_in_min=r_in,
        jump_min=tuple(min(j for _, j in s) for s in low),
        jump_max=tuple(max(j for _, j in s) for s in high),
        unbounded=is_unbounded,
    )


def pixels(values: Sequence[Fraction]) -> tuple[int, ...]:
    """Whole input pixels covered: a fractional field (transposed convs) rounds up."""
    return tuple(math.ceil(v) for v in values)


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
