"""rflint.Graph: networks declared by hand, their JSON form, and their fields.

The property test checks random declared graphs against the brute-force path oracle of
test_receptive_field (every path enumerated, METHOD.md's recurrence folded along it): the
layers are mapped to the oracle's ops here from the documented semantics of each op, not
through rflint's own conversion.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from fractions import Fraction

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import REPO
from rflint import Graph
from rflint.core.receptive_field import GLOBAL, NEUTRAL, Node, Window
from rflint.frontends.declared.graph import GraphSpecError
from test_receptive_field import oracle

SCHEMA = json.loads((REPO / "docs" / "graph-format.schema.json").read_text())


def declared_vgg16() -> Graph:
    """torchvision's VGG16 with its module names: 13 3x3 convs, 5 2x2/2 max-pools."""
    g = Graph("vgg16")
    x = g.input("x")
    index = 0
    for item in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if item == "M":
            x = g.pool(x, 2, stride=2, name=f"features.{index}", type="MaxPool2d")
            index += 1
        else:
            x = g.conv(x, 3, name=f"features.{index}", type="Conv2d")
            index += 2  # the ReLU after it
    x = g.global_pool(x, name="avgpool", type="AdaptiveAvgPool2d")
    for index in (0, 3, 6):
        x = g.linear(x, name=f"classifier.{index}", type="Linear")
    return g


def declared_resnet18() -> Graph:
    """torchvision's ResNet-18 with its module names."""
    g = Graph("resnet18")
    x = g.input("x")
    x = g.conv(x, 7, stride=2, name="conv1", type="Conv2d")
    x = g.pool(x, 3, stride=2, name="maxpool", type="MaxPool2d")
    for stage in range(1, 5):
        for block in range(2):
            name = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            y = g.conv(x, 3, stride=stride, name=f"{name}.conv1", type="Conv2d")
            y = g.conv(y, 3, name=f"{name}.conv2", type="Conv2d")
            if stride == 2:
                x = g.conv(x, 1, stride=2, name=f"{name}.downsample.0", type="Conv2d")
            x = g.add(y, x, name=f"{name}.add")
    x = g.global_pool(x, name="avgpool", type="AdaptiveAvgPool2d")
    g.linear(x, name="fc", type="Linear")
    return g


def test_vgg16_and_resnet18_declared_by_hand_give_the_papers_212_and_139():
    vgg = declared_vgg16().analyze(224)
    assert vgg.i_min == (212, 212) and vgg.layer("features.28").r_min == (196, 196)
    assert len(vgg.layers) == 18  # the dense head sits after a global op: no bounded field
    resnet = declared_resnet18().analyze(224)
    assert resnet.i_min == (139, 139)
    assert resnet.fully_utilized() and not resnet.fully_utilized(128)
    assert [layer.name for layer in resnet.unproductive(64)] == ["layer4.1.conv2"]  # residual paths reset r_min


def test_changing_a_stride_and_analysing_again_moves_the_fields():
    """A search loop edits the declared layer; fields are computed when analysed."""
    g = declared_resnet18()
    before = g.analyze(224)
    g["layer4.0.conv1"].stride = 1
    g["layer4.0.downsample.0"].stride = (1, 1)
    after = g.analyze(224)
    assert after.i_min < before.i_min and after.layer("layer4.1.conv2").jump == (16, 16)
    g["layer4.0.conv1"].stride = g["layer4.0.downsample.0"].stride = 2
    assert g.analyze(224) == before


def test_per_axis_kernel_stride_dilation_transposed_upsampling_and_several_inputs():
    g = Graph("two_inputs")
    image, depth = g.input("image"), g.input("depth")
    a = g.conv(image, (1, 7), stride=(1, 2), name="wide")  # H: r 1, j 1; W: r 7, j 2
    b = g.conv(depth, 3, dilation=(2, 1), name="dilated")  # H: r 5; W: r 3
    both = g.concat(a, b, name="both")
    up = g.upsample(g.pool(both, 2, name="pool"), 2, name="up")
    t = g.conv_transpose(up, 4, stride=2, name="deconv")
    result = g.analyze((32, 32))
    assert result.layer("wide").r_min == (1, 7) and result.layer("wide").jump == (1, 2)
    assert result.layer("dilated").r_min == (5, 3)
    # pool 2 (stride 2): r_min over both inputs' paths: H 1 + 1*1, W 3 + 1*1; r_max H 5+1, W 7+2
    assert result.layer("pool").r_min == (2, 4) and result.layer("pool").r_max == (6, 9)
    assert result.layer("up").jump == (1, 1) and result.layer("up").r_min == (2, 4)  # the jump 2 halved
    # the transposed conv halves the jump again (1/2) and grows r by 3 * 1/2: 3.5 x 5.5 -> 4 x 6 pixels
    assert t.name == "deconv" and result.layer("deconv").r_min == (4, 6)
    assert result.layer("deconv").jump == (Fraction(1, 2), Fraction(1, 2))
    assert result.capture == "declared" and result.build == "declared"


def test_diagnostics_point_at_the_declaring_lines_without_torch():
    code = """
import sys
from rflint import Graph
g = Graph("net")
x = g.input()
x = g.conv(x, 3, stride=2)
x = g.conv(x, 3, stride=2)
x = g.conv(x, 3)
diagnostics = g.analyze(8).diagnostics()
print([(d.code, d.line) for d in diagnostics])
assert "torch" not in sys.modules
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    # r: 3, 7, 15 at 8 px: the last conv's input (7) is not >= 8, its own field is: RF002 at line 8
    assert run.stdout.strip() == "[('RF002', 8), ('RF003', 4)]"


def test_html_report_of_a_declared_graph():
    pytest.importorskip("matplotlib")
    from rflint.report.html import Report, render

    page = render(Report("resnet18 (declared)", declared_resnet18().analyze(128)))
    assert "layer4.1.conv2" in page and 'class="unproductive"' in page


def test_to_dict_from_dict_round_trip_and_schema():
    for graph in (declared_vgg16(), declared_resnet18()):
        document = graph.to_dict()
        jsonschema.Draft202012Validator(SCHEMA).validate(document)
        again = Graph.from_dict(json.loads(json.dumps(document)))
        assert again.to_dict() == document
        assert _fields(again.analyze(224)) == _fields(graph.analyze(224))


def test_the_example_file_matches_the_schema():
    for file in (REPO / "fixtures" / "graphs").glob("*.json"):
        jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(file.read_text()))


@pytest.mark.parametrize("declare, message", [
    (lambda g, x: g.conv(x, 3, name="x"), "layers[1].name: 'x' is declared twice"),
    (lambda g, x: g.conv("nope", 3, name="c"), "layers[1].inputs[0] (layer 'c'): 'nope' is not a layer declared before it"),
    (lambda g, x: g.conv(x, (3, 3, 3), name="c"), "layers[1].kernel (layer 'c'): must be a positive integer or a list of 2, got [3, 3, 3]"),
    (lambda g, x: g.pool(x, 2, stride=0, name="p"), "layers[1].stride (layer 'p'): must be a positive integer or a list of 2, got 0"),
    (lambda g, x: g.add(x, name="a"), "layers[1].inputs (layer 'a'): 'add' merges two or more layers, got 1"),
    (lambda g, x: g.upsample(x, 1.5, name="u"), "layers[1].factor (layer 'u'): must be a positive integer or a list of 2, got 1.5"),
    (lambda g, x: g.conv(x, 3, name="c", noqa="rf001"), "layers[1].noqa: must be true, a rule code or a list of codes"),
])
def test_declaration_errors_name_the_field_and_the_layer(declare, message):
    g = Graph("bad")
    x = g.input("x")
    with pytest.raises(GraphSpecError) as error:
        declare(g, x)
    assert str(error.value).startswith(message)


def test_a_field_broken_after_declaration_is_reported_when_analysed():
    g = declared_resnet18()
    g["layer2.0.conv1"].stride = "2"
    with pytest.raises(GraphSpecError, match=r"layers\[\d+\]\.stride \(layer 'layer2.0.conv1'\)"):
        g.analyze(224)
    g["layer2.0.conv1"].stride = 2
    g["layer2.0.conv1"].inputs = ("layer2.0.conv2",)
    with pytest.raises(GraphSpecError, match="'layer2.0.conv2' is declared after it"):
        g.analyze(224)


# --------------------------------------------------------------------------------------
# Property test: random declared graphs against the brute-force path oracle
# --------------------------------------------------------------------------------------

SINGLE_INPUT = ("conv", "conv", "conv", "conv_transpose", "pool", "pool", "upsample", "pointwise", "linear", "global")


@st.composite
def declared_graphs(draw):
    """(graph, the oracle's nodes for it): several inputs, merges, every op."""
    ndim = draw(st.integers(1, 3))
    per_axis = lambda low, high: st.one_of(st.integers(low, high), st.tuples(*[st.integers(low, high)] * ndim))  # noqa: E731
    g = Graph("random", ndim=ndim)
    nodes: list[Node] = []
    for index in range(draw(st.integers(1, 2))):
        g.input(f"in{index}")
        nodes.append(Node(is_input=True))
    for index in range(draw(st.integers(1, 12))):
        name = f"n{index}"
        op = draw(st.sampled_from(SINGLE_INPUT + (("add", "concat", "multiply") if len(nodes) > 1 else ())))
        if op in ("add", "concat", "multiply"):
            sources = draw(st.lists(st.integers(0, len(nodes) - 1), min_size=2, max_size=3, unique=True))
        else:
            sources = [draw(st.integers(max(0, len(nodes) - 4), len(nodes) - 1))]
        names = [g.layers[i].name for i in sources]
        if op in ("conv", "conv_transpose", "pool"):
            kernel, dilation = draw(per_axis(1, 5)), draw(per_axis(1, 3))
            stride = draw(st.one_of(st.none(), per_axis(1, 3))) if op == "pool" else draw(per_axis(1, 3))
            getattr(g, op)(names[0], kernel, stride, dilation, name=name)
            axis_of = lambda v, a: v[a] if isinstance(v, tuple) else v  # noqa: E731
            k = tuple(axis_of(kernel, a) for a in range(ndim))
            s = k if stride is None else tuple(axis_of(stride, a) for a in range(ndim))
            d = tuple(axis_of(dilation, a) for a in range(ndim))
            rf_op = Window(k, s, d, transposed=op == "conv_transpose")
        elif op == "upsample":
            factor = draw(per_axis(1, 3))
            g.upsample(names[0], factor, name=name)
            factors = factor if isinstance(factor, tuple) else (factor,) * ndim
            rf_op = Window((1,) * ndim, tuple(Fraction(1, f) for f in factors), (1,) * ndim)
        elif op == "global":
            g.global_pool(names[0], name=name)
            rf_op = GLOBAL
        elif op in ("add", "concat", "multiply"):
            getattr(g, op)(*names, name=name)
            rf_op = NEUTRAL
        else:  # pointwise, linear: k = 1, s = 1
            getattr(g, op)(names[0], name=name)
            rf_op = NEUTRAL
        nodes.append(Node(inputs=tuple(sorted(sources)), op=rf_op))
    return g, nodes


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=declared_graphs(), data=st.data())
def test_random_declared_graphs_match_the_path_oracle(case, data):
    graph, nodes = case
    expected = oracle(nodes, graph.ndim)
    bounded = [e for layer, e in zip(graph.layers, expected) if _is_layer(layer) and e["bounded"]]
    res = tuple(data.draw(st.integers(1, 60)) for _ in range(graph.ndim))
    result = graph.analyze(res)
    by_name = {layer.name: layer for layer in result.layers}
    for layer, e in zip(graph.layers, expected):
        if not _is_layer(layer) or (layer.op == "linear" and not e["bounded"]):
            assert layer.name not in by_name
            continue
        got = by_name[layer.name]
        if not e["bounded"]:
            assert got.r_min is None and got.r_max is None
            continue
        assert got.r_min == tuple(math.ceil(v) for v in e["r_min"])
        assert got.r_max == tuple(math.ceil(v) for v in e["r_max"])
        assert got.r_in_min == tuple(math.ceil(v) for v in e["r_in_min"])
        assert got.jump == e["jump_min"]
        assert got.is_underutilized(res) == any(math.ceil(r) >= i for r, i in zip(e["r_min"], res))
    i_min = tuple(max((math.ceil(e["r_min"][a]) for e in bounded), default=0) for a in range(graph.ndim))
    assert result.i_min == i_min
    assert _fields(Graph.from_dict(graph.to_dict()).analyze(res)) == _fields(result)


def _is_layer(layer) -> bool:
    return layer.op in ("conv", "conv_transpose", "pool", "upsample", "linear")


def _fields(result):
    """What a Result says about receptive fields (not where layers were declared)."""
    return ([(l.name, l.op_type, l.kind, l.kernel, l.stride, l.dilation, l.r_min, l.r_max, l.r_in_min, l.jump)
             for l in result.layers], result.i_min, result.i_max, result.input_res, result.name)


def test_the_readme_examples_print_what_their_comments_say():
    """The README's declared VGG16 / ResNet-18 and its search loop, run as a user would."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    code = next(b for b in blocks if b.startswith("from rflint import Graph"))
    code += next(b for b in blocks if b.startswith("g = resnet18()"))
    run = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nassert 'torch' not in sys.modules"],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["(212, 212)", "(139, 139)", "2 (139, 139)", "1 (75, 75)"]
    comments = re.findall(r"# (.*)", code)
    assert comments[:3] == ["(212, 212)", "(139, 139)", "2 (139, 139), then 1 (75, 75)"]
