"""Tests for rflint.receptive_field: the numbers must be right.

Three independent checks:

1. A property test against a brute-force oracle: every path from the input to every node of
   random small DAGs is enumerated and the per-axis recurrence of METHOD.md is folded along
   it (the oracle re-implements the r/j arithmetic; it never calls ``Window.apply`` or
   ``propagate``).
2. Unit tests with hand-computed numbers (dilation, upsampling, transposed convs,
   non-square kernels, GLOBAL, SE gates, VGG16's 212/196, rounding of fractional fields).
3. An empirical check with torch: the input support of one central output pixel of real
   ``nn.Conv2d`` / ``nn.AvgPool2d`` / ``nn.MaxPool2d`` stacks, measured with autograd
   (positive weights) and with NaN probes (max-pooling routes gradients to one argmax, but
   propagates NaN from every position of its window), must span exactly ``propagate``'s r.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rflint.core.receptive_field import GLOBAL, NEUTRAL, Node, Window, input_limits, is_underutilized, is_unproductive, pareto_max, pareto_min, pixels, propagate

F = Fraction


def win(kernel, stride=None, dilation=None, transposed=False):
    """Window from per-axis tuples (ints allowed); defaults: stride 1, dilation 1."""
    kernel = tuple(kernel)
    stride = tuple(F(s) for s in (stride or (1,) * len(kernel)))
    dilation = tuple(dilation or (1,) * len(kernel))
    return Window(kernel, stride, dilation, transposed)


def chain(ops, ndim):
    """Sequential net: input node (NEUTRAL), then one node per op."""
    nodes = [Node(is_input=True)]
    for op in ops:
        nodes.append(Node(inputs=(len(nodes) - 1,), op=op))
    return nodes


# --------------------------------------------------------------------------------------
# 1. Brute-force oracle
# --------------------------------------------------------------------------------------


def all_paths(nodes):
    """paths[v] = every path (tuple of node indices) from an input node to v."""
    paths = []
    for v, node in enumerate(nodes):
        if node.is_input:
            paths.append([(v,)])
        else:
            paths.append([p + (v,) for u in node.inputs for p in paths[u]])
    return paths


def step(op, r, j, axis):
    """One layer of the recurrence on one axis, written from METHOD.md's formulas."""
    if op is NEUTRAL or op is None:
        return r, j
    k = op.kernel[axis]
    d = op.dilation[axis]
    s = F(op.stride[axis])
    k_eff = d * (k - 1) + 1
    if op.transposed:
        j_new = j / s
        return r + (k_eff - 1) * j_new, j_new
    return r + (k_eff - 1) * j, j * s


def sees_all(op, axis) -> bool:
    return op is GLOBAL or (isinstance(op, Window) and axis in op.unbounded)


def fold(nodes, path, axis):
    """(r before the last node's ops, r after, j after, passes an op that sees this axis
    whole, passes an op that sees any axis whole) along one path. A node with per-input
    ops applies the op of the input the path came from, then its own op."""
    r, j = F(1), F(1)
    r_before = r
    through_global = through_any = False
    previous = None
    for v in path:
        node = nodes[v]
        ops = [node.op]
        if node.edge_ops is not None and previous is not None:
            ops.insert(0, node.edge_ops[node.inputs.index(previous)])
        r_before = r
        for op in ops:
            if op is GLOBAL or (isinstance(op, Window) and op.unbounded):
                through_any = True
            if sees_all(op, axis):
                through_global = True
                continue
            r, j = step(op, r, j, axis)
        previous = v
    return r_before, r, j, through_global, through_any


def oracle(nodes, ndim):
    """Per node: dict with the semantics rflint must implement (see module docstring)."""
    out = []
    for v, ps in enumerate(all_paths(nodes)):
        per_axis = [[fold(nodes, p, a) for p in ps] for a in range(ndim)]
        unbounded = any(t[4] for t in per_axis[0]) if ndim else False
        bounded_paths = [[t for t in per_axis[a] if not t[3]] for a in range(ndim)]
        if not all(bounded_paths):
            out.append(dict(bounded=False, unbounded=unbounded, n_paths=len(ps)))
            continue
        out.append(
            dict(
                bounded=True,
                unbounded=unbounded,
                n_paths=len(ps),
                r_min=tuple(min(t[1] for t in bp) for bp in bounded_paths),
                r_max=tuple(max(t[1] for t in bp) for bp in bounded_paths),
                r_in_min=tuple(min(t[0] for t in bp) for bp in bounded_paths),
                jump_min=tuple(min(t[2] for t in bp) for bp in bounded_paths),
                jump_max=tuple(max(t[2] for t in bp) for bp in bounded_paths),
            )
        )
    return out


def assert_matches_oracle(nodes, ndim, fields=None):
    fields = propagate(nodes, ndim) if fields is None else fields
    expected = oracle(nodes, ndim)
    assert len(fields) == len(nodes)
    for v, (f, e) in enumerate(zip(fields, expected)):
        ctx = f"node {v} ({nodes[v]}) field {f} expected {e}"
        assert f.bounded == e["bounded"], ctx
        assert f.unbounded == e["unbounded"], ctx
        if not e["bounded"]:
            assert (f.r_min, f.r_max, f.r_in_min, f.jump_min, f.jump_max) == (None,) * 5, ctx
            continue
        for key in ("r_min", "r_max", "r_in_min", "jump_min", "jump_max"):
            got = getattr(f, key)
            assert got is not None and len(got) == ndim, ctx
            for a in range(ndim):
                assert got[a] == e[key][a], f"{key}[axis {a}] {got[a]} != {e[key][a]}; {ctx}"
    return fields, expected


STRIDES = [F(1), F(2), F(3), F(1, 2), F(1, 3)]


@st.composite
def windows(draw, ndim):
    transposed = draw(st.integers(0, 6)) == 0
    stride_choices = STRIDES[:3] if transposed else STRIDES
    kernel = tuple(draw(st.integers(1, 7)) for _ in range(ndim))
    stride = tuple(draw(st.sampled_from(stride_choices)) for _ in range(ndim))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    return Window(kernel, stride, dilation, transposed)


@st.composite
def ops(draw, ndim):
    kind = draw(st.integers(0, 39))
    if kind == 0:  # GLOBAL: rare
        return GLOBAL
    if kind == 1:  # a whole axis read (attention over rows): rare too
        w = draw(windows(ndim))
        axes = frozenset(draw(st.sets(st.integers(0, ndim - 1), min_size=1, max_size=ndim)))
        return Window(w.kernel, w.stride, w.dilation, w.transposed, axes)
    if kind < 12:
        return NEUTRAL
    return draw(windows(ndim))


@st.composite
def dags(draw):
    ndim = draw(st.integers(1, 3))
    n = draw(st.integers(2, 12))
    # The input node carries an op too, sometimes (a stem fused into the input node).
    in_op = draw(st.one_of(st.just(NEUTRAL), ops(ndim)))
    nodes = [Node(op=in_op, is_input=True)]
    reachable = [True]
    not_global = st.one_of(st.just(NEUTRAL), windows(ndim))
    for v in range(1, n):
        if draw(st.integers(0, 19)) == 0:
            # A source not fed by the input (a learned constant / parameter): it and nodes
            # fed only by it are unreachable from the input. Unreachable nodes never get
            # GLOBAL here: test_global_op_on_a_constant_is_not_unbounded covers that case.
            nodes.append(Node(inputs=(), op=draw(not_global)))
            reachable.append(False)
            continue
        k = draw(st.integers(1, min(3, v)))
        # Bias toward recent nodes: long chains and skip connections both occur.
        inputs = draw(
            st.lists(st.integers(max(0, v - 4), v - 1) | st.integers(0, v - 1),
                     min_size=1, max_size=k, unique=True)
        )
        reachable.append(any(reachable[i] for i in inputs))
        op = draw(ops(ndim) if reachable[-1] else not_global)
        edge_ops = None
        if draw(st.integers(0, 4)) == 0:  # per-input ops (attention's keys, HaloNet's blocks)
            edge_ops = tuple(draw(ops(ndim) if reachable[i] else not_global) for i in sorted(inputs))
        nodes.append(Node(inputs=tuple(sorted(inputs)), op=op, edge_ops=edge_ops))
    return nodes, ndim


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=dags(), data=st.data())
def test_propagate_matches_brute_force_paths(dag, data):
    nodes, ndim = dag
    fields, expected = assert_matches_oracle(nodes, ndim)

    # Diagnoses for a random input resolution: draw values close to the actual fields so
    # the >= boundary (r == I_res) is exercised, not just far-away values.
    candidates = {1, 2, 500}
    for e in expected:
        if e["bounded"]:
            for key in ("r_min", "r_in_min", "r_max"):
                for x in e[key]:
                    candidates |= {math.floor(x), math.ceil(x), math.ceil(x) + 1}
    candidates = sorted(c for c in candidates if c >= 1)
    res = tuple(data.draw(st.sampled_from(candidates)) for _ in range(ndim))
    for v, (f, e) in enumerate(zip(fields, expected)):
        exp_under = e["bounded"] and any(e["r_min"][a] >= res[a] for a in range(ndim))
        exp_unprod = e["bounded"] and all(e["r_in_min"][a] >= res[a] for a in range(ndim))
        assert is_underutilized(f, res) == exp_under, (v, res, e)
        assert is_unproductive(f, res) == exp_unprod, (v, res, e)

    layers = data.draw(st.lists(st.integers(0, len(nodes) - 1), unique=True))
    got_min, got_max = input_limits(fields, layers, ndim)
    chosen = [expected[i] for i in layers if expected[i]["bounded"]]
    if chosen:
        exp_min = tuple(math.ceil(max(e["r_min"][a] for e in chosen)) for a in range(ndim))
        exp_max = tuple(math.ceil(max(e["r_max"][a] for e in chosen)) for a in range(ndim))
    else:
        exp_min = exp_max = (0,) * ndim
    assert tuple(got_min) == exp_min
    assert tuple(got_max) == exp_max
    assert all(isinstance(x, int) for x in tuple(got_min) + tuple(got_max))


@settings(max_examples=150, deadline=None)
@given(
    pairs=st.sets(
        st.tuples(st.fractions(0, 50, max_denominator=4), st.fractions(F(1, 9), 27, max_denominator=9)),
        min_size=1, max_size=12,
    )
)
def test_pareto_sets_keep_extremes_and_only_drop_dominated(pairs):
    lo, hi = pareto_min(pairs), pareto_max(pairs)
    assert lo <= pairs and hi <= pairs
    assert min(r for r, _ in lo) == min(r for r, _ in pairs)
    assert min(j for _, j in lo) == min(j for _, j in pairs)
    assert max(r for r, _ in hi) == max(r for r, _ in pairs)
    assert max(j for _, j in hi) == max(j for _, j in pairs)
    for p in pairs - lo:
        assert any(q[0] <= p[0] and q[1] <= p[1] for q in lo)
    for p in pairs - hi:
        assert any(q[0] >= p[0] and q[1] >= p[1] for q in hi)


def test_nodes_not_reachable_from_input_are_not_bounded():
    nodes = [
        Node(is_input=True),  # 0
        Node(op=win((3, 3))),  # 1: no inputs (e.g. a learned constant)
        Node(inputs=(1,), op=win((5, 5))),  # 2: only fed by the constant
        Node(inputs=(0, 2), op=NEUTRAL),  # 3: input + constant
        Node(inputs=(3,), op=win((3, 3))),  # 4
    ]
    f = propagate(nodes, 2)
    assert not f[1].bounded and not f[2].bounded
    assert f[3].r_min == f[3].r_max == (1, 1)
    assert f[4].r_min == f[4].r_max == (3, 3)
    assert not any(x.unbounded for x in f)
    assert_matches_oracle(nodes, 2, f)


def test_global_op_on_a_constant_is_not_unbounded():
    """'Unbounded' is about paths from the input: a mean over a parameter is not."""
    nodes = [
        Node(is_input=True),  # 0: x
        Node(op=NEUTRAL),  # 1: a parameter / constant: no input path
        Node(inputs=(1,), op=GLOBAL),  # 2: param.mean(): still no input path
        Node(inputs=(0, 2), op=NEUTRAL),  # 3: x * c
    ]
    f = propagate(nodes, 1)
    assert f[3].r_min == f[3].r_max == (1,)  # fine
    assert [x.unbounded for x in f] == [False, False, False, False]


# --------------------------------------------------------------------------------------
# Regression: min of the predecessors' r_min is wrong
# --------------------------------------------------------------------------------------


def test_min_of_predecessor_r_min_is_wrong():
    # Path A: conv k=2 s=4 -> (r=2, j=4).  Path B: conv k=5 s=1 -> (r=5, j=1).
    # After the add, r_min = 2 (path A). A 3-kernel conv then adds 2*j on each path:
    # A: 2 + 2*4 = 10, B: 5 + 2*1 = 7. The path with the *larger* r ends up smaller.
    # Per-node min/max summaries would carry r_min=2 with jump 4 (-> 10, too big) or
    # r_min=2 with jump_min=1 (-> 4, too small, a field no path has).
    nodes = [
        Node(is_input=True),
        Node(inputs=(0,), op=win((2,), (4,))),  # A
        Node(inputs=(0,), op=win((5,), (1,))),  # B
        Node(inputs=(1, 2), op=NEUTRAL),  # add
        Node(inputs=(3,), op=win((3,))),
    ]
    f = propagate(nodes, 1)
    assert f[3].r_min == (2,) and f[3].r_max == (5,)
    assert f[3].jump_min == (1,) and f[3].jump_max == (4,)
    assert f[4].r_min == (7,) and f[4].r_max == (10,)
    assert f[4].r_in_min == (2,)
    naive_carry = f[3].r_min[0] + 2 * 4
    naive_mix = f[3].r_min[0] + 2 * f[3].jump_min[0]
    assert (naive_carry, naive_mix) == (10, 4) and f[4].r_min[0] not in (naive_carry, naive_mix)
    assert_matches_oracle(nodes, 1, f)


# --------------------------------------------------------------------------------------
# 2. Hand-computed numbers
# --------------------------------------------------------------------------------------


def test_dilated_convs():
    # k_eff = 2*(3-1)+1 = 5: r = 5, then 5 + 4 = 9.
    f = propagate(chain([win((3, 3), dilation=(2, 2))] * 2, 2), 2)
    assert f[1].r_min == (5, 5)
    assert f[2].r_min == f[2].r_max == (9, 9)


def test_stride_then_upsample_then_conv():
    # conv3/s2: r=3, j=2; x2 upsample: j=1; conv3: 3 + 2*1 = 5.
    up = win((1, 1), stride=(F(1, 2), F(1, 2)))
    f = propagate(chain([win((3, 3), (2, 2)), up, win((3, 3))], 2), 2)
    assert f[2].r_min == (3, 3) and f[2].jump_min == (1, 1)
    assert f[3].r_min == f[3].r_max == (5, 5)
    assert f[3].jump_min == (1, 1)


def test_transposed_conv_divides_jump():
    # conv4/s4: r=4, j=4. ConvTranspose k4 s2: j = 4/2 = 2, r = 4 + 3*2 = 10.
    # conv3: 10 + 2*2 = 14, j stays 2.
    t = win((4, 4), (2, 2), transposed=True)
    f = propagate(chain([win((4, 4), (4, 4)), t, win((3, 3))], 2), 2)
    assert f[1].r_min == (4, 4) and f[1].jump_min == (4, 4)
    assert f[2].r_min == (10, 10) and f[2].jump_min == f[2].jump_max == (2, 2)
    assert f[3].r_min == (14, 14)


def test_transposed_conv_from_the_input_gives_fractional_field():
    # From the input (j=1): ConvTranspose k4 s2 gives j=1/2, r = 1 + 3/2 = 5/2 -> 3 pixels.
    f = propagate(chain([win((4,), (2,), transposed=True)], 1), 1)
    assert f[1].r_min == (F(5, 2),) and f[1].jump_min == (F(1, 2),)
    assert pixels(f[1].r_min) == (3,)
    assert input_limits(f, [1], 1) == ((3,), (3,))


def test_non_square_kernels():
    # (H, W): 1x7 grows only W; then 7x1 grows only H.
    f = propagate(chain([win((1, 7)), win((7, 1))], 2), 2)
    assert f[1].r_min == (1, 7)
    assert f[2].r_min == f[2].r_max == (7, 7)
    # Non-square stride too: (2,1) stride, then 3x3 -> H grows by 2*2, W by 2*1.
    f = propagate(chain([win((1, 1), (2, 1)), win((3, 3))], 2), 2)
    assert f[2].r_min == (5, 3)


def test_global_then_conv_is_not_bounded():
    f = propagate(chain([win((3, 3)), GLOBAL, win((3, 3))], 2), 2)
    assert f[1].bounded and not f[1].unbounded
    assert not f[2].bounded and f[2].unbounded
    assert not f[3].bounded and f[3].unbounded
    assert f[3].r_min is None and f[3].r_in_min is None
    assert not is_underutilized(f[3], (1, 1)) and not is_unproductive(f[3], (1, 1))
    assert input_limits(f, [2, 3], 2) == ((0, 0), (0, 0))
    assert input_limits(f, [1, 2, 3], 2) == ((3, 3), (3, 3))


def test_squeeze_excitation_gate_keeps_the_field():
    nodes = [
        Node(is_input=True),  # 0
        Node(inputs=(0,), op=win((3, 3))),  # 1: x, r=3
        Node(inputs=(1,), op=GLOBAL),  # 2: adaptive avg pool
        Node(inputs=(2,), op=win((1, 1))),  # 3: 1x1 conv (fc)
        Node(inputs=(3,), op=NEUTRAL),  # 4: sigmoid
        Node(inputs=(1, 4), op=NEUTRAL),  # 5: x * gate
        Node(inputs=(5,), op=win((3, 3))),  # 6
    ]
    f = propagate(nodes, 2)
    assert f[5].bounded and f[5].unbounded
    assert f[5].r_min == f[5].r_max == (3, 3)
    assert f[6].r_min == f[6].r_max == (5, 5) and f[6].r_in_min == (3, 3)
    assert not f[3].bounded and not f[4].bounded
    assert_matches_oracle(nodes, 2, f)


def test_residual_block_min_and_max():
    # x -> conv3 -> conv3 -> add(x) : r_min 1 (identity), r_max 5.
    nodes = [
        Node(is_input=True),
        Node(inputs=(0,), op=win((3, 3))),
        Node(inputs=(1,), op=win((3, 3))),
        Node(inputs=(0, 2), op=NEUTRAL),
        Node(inputs=(3,), op=win((3, 3), (2, 2))),
    ]
    f = propagate(nodes, 2)
    assert f[3].r_min == (1, 1) and f[3].r_max == (5, 5)
    assert f[4].r_min == (3, 3) and f[4].r_max == (7, 7)
    assert_matches_oracle(nodes, 2, f)


VGG16 = [2, "M", 2, "M", 3, "M", 3, "M", 3, "M"]  # convs per stage, "M" = 2x2/2 max-pool


def vgg16_chain():
    ops = []
    for item in VGG16:
        if item == "M":
            ops.append(win((2, 2), (2, 2)))
        else:
            ops.extend([win((3, 3))] * item)
    return chain(ops, 2)


def test_vgg16_i_min_212_last_conv_196():
    nodes = vgg16_chain()
    f = propagate(nodes, 2)
    convs = [i for i, n in enumerate(nodes) if n.op is not None and n.op.kernel == (3, 3)]
    pools = [i for i, n in enumerate(nodes) if n.op is not None and n.op.kernel == (2, 2)]
    assert len(convs) == 13 and len(pools) == 5
    assert f[convs[-1]].r_min == (196, 196)
    assert f[pools[-1]].r_min == (212, 212)
    assert [f[p].r_min[0] for p in pools] == [6, 16, 44, 100, 212]
    layers = list(range(1, len(nodes)))
    assert input_limits(f, layers, 2) == ((212, 212), (212, 212))
    assert input_limits(f, convs, 2) == ((196, 196), (196, 196))
    # At 224 nothing is underutilized; at 200 the last pool is (r=212) and so is nothing
    # else; the last pool is unproductive at 196 (its input, the last conv, has r=196).
    assert not any(is_underutilized(f[i], (224, 224)) for i in layers)
    assert [i for i in layers if is_underutilized(f[i], (200, 200))] == [pools[-1]]
    assert [i for i in layers if is_unproductive(f[i], (196, 196))] == [pools[-1]]
    # Non-square input: unproductive needs every axis, underutilized any axis.
    assert is_underutilized(f[pools[-1]], (300, 212))
    assert not is_unproductive(f[pools[-1]], (300, 196))


def test_unproductive_1x1_conv_never_raises_i_min():
    nodes = chain([win((7, 7)), win((1, 1))], 2)
    f = propagate(nodes, 2)
    assert f[2].r_min == (7, 7) and f[2].r_in_min == (7, 7)
    assert input_limits(f, [1, 2], 2)[0] == (7, 7)
    assert is_unproductive(f[2], (7, 7)) and not is_unproductive(f[2], (8, 7))
    assert not is_unproductive(f[1], (7, 7)) and is_underutilized(f[1], (7, 7))
    # The input node itself: r_in_min = 1.
    assert f[0].r_in_min == (1, 1) and f[0].r_min == (1, 1)


def test_pixels_rounds_up():
    assert pixels([F(7, 2), F(5), F(1, 3), F(10, 1)]) == (4, 5, 1, 10)
    assert all(isinstance(x, int) for x in pixels([F(7, 2)]))
    # x2 upsample then a 2-kernel conv: r = 1 + 1 * 1/2 = 3/2 -> 2 pixels.
    f = propagate(chain([win((1,), (F(1, 2),)), win((2,))], 1), 1)
    assert f[2].r_min == (F(3, 2),)
    assert input_limits(f, [2], 1) == ((2,), (2,))


# --------------------------------------------------------------------------------------
# 3. Empirical: real torch layers, support of one central output pixel
# --------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
nn = torch.nn


def random_stack(rng, allow_max):
    """A random sequential stack of (torch module, Window); cumulative stride kept small."""
    layers = []
    cum = [1, 1]
    for _ in range(rng.randint(1, 5)):
        kinds = ["conv", "conv", "avg"] + (["max", "max"] if allow_max else [])
        kind = rng.choice(kinds)
        k = (rng.randint(1, 5), rng.randint(1, 5))
        s = tuple(rng.choice([1, 1, 2, 3]) if c < 5 else 1 for c in cum)
        d = (rng.randint(1, 3), rng.randint(1, 3)) if kind != "avg" else (1, 1)
        p = tuple(rng.randint(0, kk // 2) for kk in k)
        if kind == "conv":
            m = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
            with torch.no_grad():
                m.weight.fill_(1.0)
        elif kind == "avg":
            m = nn.AvgPool2d(k, stride=s, padding=p)
        else:
            m = nn.MaxPool2d(k, stride=s, padding=p, dilation=d)
        layers.append((m, win(k, s, d)))
        cum = [c * ss for c, ss in zip(cum, s)]
    return layers


def _support(idx):
    lo, hi = int(idx.min()), int(idx.max())
    return hi - lo + 1, lo, hi


def measured_extent(model, size, small, probe):
    """Per axis: (span of the central output pixel's input support, min index, max index, n)."""
    h, w = size
    if probe == "grad":
        x = (torch.rand(1, 1, h, w, dtype=torch.float64) + 0.5).requires_grad_(True)
        y = model(x)
        oh, ow = y.shape[-2] // 2, y.shape[-1] // 2
        y[0, 0, oh, ow].backward()
        g = x.grad[0, 0]
        assert (g >= 0).all()
        rows = torch.nonzero(g.sum(1) > 0).flatten()
        cols = torch.nonzero(g.sum(0) > 0).flatten()
        return [(*_support(rows), h), (*_support(cols), w)]
    # NaN probe, one axis at a time: batch element i poisons the whole line i of that axis
    # (so the other axis can stay small); max-pool, avg-pool and conv all propagate NaN.
    out = []
    for axis, n in enumerate(size):
        shape = [n, small[1]] if axis == 0 else [small[0], n]
        x = torch.rand(n, 1, *shape)
        for i in range(n):
            if axis == 0:
                x[i, 0, i, :] = float("nan")
            else:
                x[i, 0, :, i] = float("nan")
        with torch.no_grad():
            y = model(x)
        oh, ow = y.shape[-2] // 2, y.shape[-1] // 2
        hit = torch.nonzero(torch.isnan(y[:, 0, oh, ow])).flatten()
        out.append((*_support(hit), n))
    return out


def check_stack(layers, probe):
    model = nn.Sequential(*(m for m, _ in layers))
    if probe == "grad":
        model = model.double()
    nodes = chain([w for _, w in layers], 2)
    f = propagate(nodes, 2)[-1]
    assert f.r_min == f.r_max
    # Big enough that the central pixel's support is far from the (padded) borders.
    size = tuple(int(3 * f.r_min[a] + 4 * f.jump_min[a] + 8) for a in range(2))
    small = tuple(int(f.r_min[a]) for a in range(2))  # enough for one output
    got = measured_extent(model, size, small, probe)
    for a, (span, lo, hi, n) in enumerate(got):
        assert lo > 0 and hi < n - 1, "support touches the border: test input too small"
        assert span == f.r_min[a], (a, span, f.r_min, [w for _, w in layers])


def test_autograd_support_matches_r_conv_and_avgpool():
    rng = random.Random(1234)
    for _ in range(60):
        check_stack(random_stack(rng, allow_max=False), "grad")


def test_nan_probe_support_matches_r_with_maxpool():
    rng = random.Random(4321)
    for _ in range(40):
        check_stack(random_stack(rng, allow_max=True), "nan")


def test_nan_probe_agrees_with_autograd_on_vgg16_prefix():
    # VGG16 up to pool3 (r = 44), with real max-pools.
    layers = []
    for item in VGG16[:6]:
        if item == "M":
            layers.append((nn.MaxPool2d(2, 2), win((2, 2), (2, 2))))
        else:
            for _ in range(item):
                m = nn.Conv2d(1, 1, 3, padding=1, bias=False)
                with torch.no_grad():
                    m.weight.fill_(1.0)
                layers.append((m, win((3, 3))))
    check_stack(layers, "nan")
    f = propagate(chain([w for _, w in layers], 2), 2)
    assert f[-1].r_min == (44, 44)
