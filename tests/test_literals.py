"""Tests for rflint.source.literals: instrumented programs must mean the same, and origins must be exact.

1. A property test over random programs (arithmetic, big ints, slices, f-strings with nested
   format specs, defaults, functools.partial, classes, match statements, annotations with
   and without ``from __future__ import annotations``, global/nonlocal, json, str.format;
   LF, CRLF or CR line ends; UTF-8 multi-byte and str.splitlines-only line-break characters)
   runs each program plain and instrumented and compares the results. It also checks that
   every origin spells its literal in the source, that undoing the rewrite gives back the
   parsed AST, and that overriding a literal means the same as editing its source text.
2. Provenance through a real package: config tables, default arguments, partial and
   relative imports down to ``nn.Conv2d.stride``, with character (not byte) columns.
3. Overrides, freshness of repeated imports, and no ``.pyc`` on the import path.
4. torchvision's MobileNetV3, instrumented in a subprocess.

Decided difference: a bare literal is a LiteralInt, so ``type(v) is int`` and ``is`` between
equal literals are False (``test_only_object_identity_differs``). The property test therefore
observes values, never exact types or identities.
"""

import ast
import copy
import dataclasses
import importlib.util
import json
import os
import pickle
import py_compile
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Iterator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rflint
from rflint.source.literals import TABLE_NAME, LiteralInt, Origin, import_file, instrument, origin_of, rewrite_literals

VIRTUAL_FILE = "/virtual/program.py"

# ---------------------------------------------------------------------------------------
# Random programs
# ---------------------------------------------------------------------------------------

small_ints = st.integers(0, 12)
literals = st.one_of(
    small_ints.map(str),
    st.integers(2**64, 2**80).map(str),
    st.sampled_from(["0x1F", "0b101", "0o17", "1_000"]),
)
signed_literals = st.one_of(literals, literals.map(lambda lit: f"-{lit}"))
int_leaves = st.one_of(signed_literals, st.sampled_from(["n", "xs[2]", "True", "False"]))


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # Divisors are folded into 1..7 so that programs rarely raise (raising is compared too).
    binary = lambda ops: st.tuples(inner, st.sampled_from(ops), inner)  # noqa: E731
    return st.one_of(
        binary(["+", "-", "*"]).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        binary(["//", "%"]).map(lambda t: f"({t[0]} {t[1]} ({t[2]} % 7 + 1))"),
        st.tuples(small_ints, st.integers(0, 5)).map(lambda t: f"({t[0]} ** {t[1]})"),
        inner.map(lambda e: f"(-{e})"),
        inner.map(lambda e: f"xs[{e} % len(xs)]"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} if {t[0]} < {t[1]} else {t[1]})"),
        inner.map(lambda e: f"sum(range({e} % 5))"),
        # Multi-byte characters, and characters that str.splitlines (not Python) takes for line
        # ends, before a literal.
        inner.map(lambda e: f"(len('é😀\f\u2028') + {e})"),
    )


int_exprs = st.recursive(int_leaves, _compound, max_leaves=5)

observations = st.one_of(
    int_exprs,
    int_exprs.map(lambda e: f"({e} == {e}, {e} < 3, {e} >= -2, isinstance({e}, int))"),
    int_exprs.map(lambda e: f'f"{{{e}}}"'),
    st.tuples(int_exprs, small_ints).map(lambda t: f'f"{{{t[0]}:>{{{t[1]}}}}}|{{{t[0]}!r:{t[1]}}}"'),
    int_exprs.map(lambda e: f'"{{}}-{{:05d}}-%d".format({e}, {e}) % {e}'),
    int_exprs.map(lambda e: f"json.dumps([{e}, {{{e}: {e}, 2: [1, True]}}])"),
    int_exprs.map(lambda e: f"(hash({e}) == hash(int({e})), str({e}), repr({e}), int({e}))"),
    int_exprs.map(lambda e: f"(xs[1:{e} % 5], xs[::2], xs[{e} % 3:], xs[::-1][1])"),
    int_exprs.map(lambda e: f"{{{e}: 'a', 2: 'b', 0: 'c'}}.get(2)"),
    int_exprs.map(lambda e: f"list(range({e} % 6, 10, 3))"),
)


def default_arguments(draw, k):
    e = lambda: draw(int_exprs)  # noqa: E731
    code = f'''
def f{k}(a={e()}, *, b={e()}) -> int:
    """Subtract 1 from 2."""
    return a - b
p{k} = functools.partial(f{k}, b={e()})
h{k} = lambda v={e()}: v * {e()}
'''
    return code, f"(f{k}(), p{k}(), p{k}({e()}), f{k}.__defaults__, f{k}.__kwdefaults__, h{k}())"


def class_attributes(draw, k):
    e = lambda: draw(int_exprs)  # noqa: E731
    code = f'''
class C{k}:
    """Has 3 attributes."""
    size = {e()}
    __hidden = {e()}
    def get(self, extra={e()}):
        return (self.size, self.__hidden, extra)
@dataclasses.dataclass
class D{k}:
    a: int = {e()}
    b: typing.Annotated[int, {draw(literals)}] = {e()}
'''
    return code, f"(C{k}().get(), C{k}.size, dataclasses.astuple(D{k}()), repr(D{k}({e()})))"


def match_statement(draw, k):
    e = lambda: draw(int_exprs)  # noqa: E731
    lit = lambda: draw(literals)  # noqa: E731
    code = f"""
match ({e()}, {{1: {e()}}}, [{e()}, {e()}]):
    case (0 | 1 | -{lit()}, _, _):
        m{k} = "small"
    case ({lit()}, {{1: {lit()}}}, _) | (_, _, [{lit()}, _]):
        m{k} = "literal"
    case (x, {{1: y}}, [_, z]) if x > {e()} and z != {lit()}:
        m{k} = (x, y, z, {e()})
    case _:
        m{k} = {e()}
"""
    return code, f"m{k}"


def annotations(draw, k):
    e = lambda: draw(int_exprs)  # noqa: E731
    meta = lambda: f"typing.Annotated[int, {draw(literals)}]"  # noqa: E731
    code = f"""
x{k}: int = {e()}
y{k}: {meta()} = {e()}
def g{k}(a: {meta()} = {e()}, *rest: {meta()}) -> {meta()}:
    z: {meta()} = a
    return z
"""
    return code, f"(x{k}, y{k}, g{k}(), g{k}.__annotations__, __annotations__)"


def scopes(draw, k):
    e = lambda: draw(int_exprs)  # noqa: E731
    code = f"""
counter{k} = {e()}
def bump{k}(by={e()}):
    global counter{k}
    counter{k} += by
    def inner(step={e()}):
        nonlocal by
        by += step
        return by
    return inner()
CFG{k} = [({e()}, {e()}, {e()}), ({e()}, {e()}, {e()})]
"""
    comprehension = f"[i * {e()} for i in range({e()} % 4)]"
    return code, f"(bump{k}(), counter{k}, [c[2] for c in CFG{k}], sorted(CFG{k}), {comprehension})"


SNIPPETS = [default_arguments, class_attributes, match_statement, annotations, scopes]


@st.composite
def programs(draw) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append('"""A docstring naming 1, 2 and 3."""')
    if draw(st.booleans()):
        lines.append("from __future__ import annotations")
    lines.append("import dataclasses, functools, json, typing")
    lines.append(f"n = {draw(signed_literals)}")
    lines.append(f"xs = [{', '.join(draw(st.lists(signed_literals, min_size=3, max_size=5)))}]")
    observed = draw(st.lists(observations, max_size=3))
    for k in range(draw(st.integers(0, 3))):
        code, observation = draw(st.sampled_from(SNIPPETS))(draw, k)
        lines.append(code)
        observed.append(observation)
    lines.append(f"result = [__doc__, {', '.join(observed)}]")
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return ("\n".join(lines) + "\n").replace("\n", newline)


def run(code) -> tuple[str, object]:
    module = types.ModuleType("program")
    sys.modules["program"] = module  # dataclasses look string annotations up there
    try:
        exec(code, module.__dict__)
    except Exception as error:  # the instrumented program must raise the very same way
        return "raised", f"{type(error).__name__}: {error}"
    finally:
        del sys.modules["program"]
    return "ok", module.result


def plain(source: str):
    return compile(source, VIRTUAL_FILE, "exec", dont_inherit=True)


def assert_same_outcome(actual, expected) -> None:
    assert repr(actual) == repr(expected)
    assert actual == expected


class UndoInstrumentation(ast.NodeTransformer):
    """Puts each table lookup back as the literal it replaced."""

    def __init__(self, table: tuple[LiteralInt, ...]):
        self.table = table

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        if isinstance(node.value, ast.Name) and node.value.id == TABLE_NAME:
            return ast.copy_location(ast.Constant(value=int(self.table[node.slice.value])), node)
        return self.generic_visit(node)


def source_lines(source: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", source)


def replace_text(source: str, origin: Origin, text: str) -> str:
    lines = source_lines(source)
    line = lines[origin.line - 1]
    lines[origin.line - 1] = line[: origin.column - 1] + text + line[origin.end_column - 1 :]
    return "\n".join(lines)


def text_at(source: str, origin: Origin) -> str:
    return source_lines(source)[origin.line - 1][origin.column - 1 : origin.end_column - 1]


@settings(max_examples=300, deadline=None)
@given(source=programs(), data=st.data())
def test_instrumented_programs_mean_the_same(source, data):
    assert_same_outcome(run(instrument(source, VIRTUAL_FILE)), run(plain(source)))

    original = ast.parse(source)
    rewritten, table = rewrite_literals(ast.parse(source), VIRTUAL_FILE, source)
    restored = UndoInstrumentation(table).visit(rewritten)
    assert ast.dump(restored, include_attributes=True) == ast.dump(original, include_attributes=True)
    for literal in table:
        assert literal.origin.file == VIRTUAL_FILE and literal.origin.line == literal.origin.end_line
        assert ast.literal_eval(text_at(source, literal.origin)) == literal

    if table:  # overriding a literal must mean exactly what editing its text means
        origin = data.draw(st.sampled_from(table)).origin
        value = data.draw(st.integers(0, 20))
        overridden = instrument(source, VIRTUAL_FILE, {(origin.line, origin.column): value})
        assert_same_outcome(run(overridden), run(plain(replace_text(source, origin, str(value)))))


# ---------------------------------------------------------------------------------------
# LiteralInt itself
# ---------------------------------------------------------------------------------------

ORIGIN = Origin("/m.py", 3, 7, 3, 8)


def test_literal_int_behaves_as_its_value():
    two = LiteralInt(2, ORIGIN)
    assert (repr(two), str(two), f"{two:03d}", "{:x}".format(two), json.dumps({two: two})) == (
        "2", "2", "002", "2", '{"2": 2}'
    )
    assert two == 2 and hash(two) == hash(2) and {two: "x"}[2] == "x"
    assert type(two * 3) is int and origin_of(two * 3) is None  # arithmetic forgets the origin
    assert origin_of(2) is None and origin_of(two) == ORIGIN


def test_pickle_gives_plain_int_and_copies_keep_origin():
    two = LiteralInt(2, ORIGIN)
    assert type(pickle.loads(pickle.dumps(two))) is int
    assert pickle.loads(pickle.dumps((two, [two]))) == (2, [2])
    assert origin_of(copy.deepcopy([two])[0]) == ORIGIN
    assert origin_of(copy.copy(two)) == ORIGIN


def test_only_object_identity_differs():
    namespace = {}
    exec(instrument("a = 5\nb = 5\nc = a + 0\n", VIRTUAL_FILE), namespace)
    a, b, c = namespace["a"], namespace["b"], namespace["c"]
    assert a == b == c and hash(a) == hash(b)
    assert type(a) is not int and a is not b  # plain CPython: both True
    assert type(c) is int


def test_unevaluated_literals_stay_plain_and_cannot_be_overridden():
    source = "def f(a: 'x' = 1) -> 2:\n    return a\nmatch 3:\n    case 3:\n        pass\n"
    _, table = rewrite_literals(ast.parse(source), VIRTUAL_FILE, source)
    assert [(literal, literal.origin.line) for literal in table] == [(1, 1), (3, 3)]
    with pytest.raises(ValueError, match="no integer literal"):
        instrument(source, VIRTUAL_FILE, {(4, 10): 1})  # the pattern of `case 3`


# ---------------------------------------------------------------------------------------
# A real package, imported instrumented
# ---------------------------------------------------------------------------------------

PACKAGE = {
    "__init__.py": '"""A toy model package."""\n',
    "blocks.py": """\
        import torch.nn as nn

        CFG = [(16, 3, 2), (32, 3, 1)]


        def make(in_channels, stride=2):
            return nn.Conv2d(in_channels, 8, 3, stride=stride)
        """,
    "net.py": """\
        import functools

        import torch.nn as nn

        from .blocks import CFG, make

        label, conv = "é€", functools.partial(nn.Conv2d, stride=2)


        def build():
            layers = [nn.Conv2d(cin, cout, k, stride=s) for cin, (cout, k, s) in zip((3, 16), CFG)]
            return nn.Sequential(*layers, make(32), conv(8, 8, 3))
        """,
}


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Iterator[Path]:
    """A folder to import from; sys.path and sys.modules forget it afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def package(sandbox) -> Path:
    package = sandbox / "pkg"
    package.mkdir()
    for name, text in PACKAGE.items():
        (package / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return package


def locate(path: Path, snippet: str, before: str) -> Origin:
    """The origin of the integer literal right after ``before`` in ``snippet``, on the one
    line of ``path`` containing ``snippet``; columns count characters, as str indices do."""
    lines = path.read_text(encoding="utf-8").splitlines()
    (number,) = [i for i, line in enumerate(lines, 1) if snippet in line]
    column = lines[number - 1].index(snippet) + snippet.index(before) + len(before) + 1
    digits = re.match(r"\d+", lines[number - 1][column - 1 :]).group()
    return Origin(os.path.abspath(path), number, column, number, column + len(digits))


def build(package: Path, overrides=None) -> torch.nn.Sequential:
    net = import_file(package / "net.py", package.glob("*.py"), overrides)
    assert net.__name__ == "pkg.net"
    with torch.device("meta"):
        return net.build()


def test_strides_point_at_their_literals(package):
    blocks, net = package / "blocks.py", package / "net.py"
    expected = [
        locate(blocks, "(16, 3, 2)", "(16, 3, "),
        locate(blocks, "(32, 3, 1)", "(32, 3, "),
        locate(blocks, "stride=2", "stride="),
        locate(net, "stride=2", "stride="),
    ]
    model = build(package)
    assert [conv.stride for conv in model] == [(2, 2), (1, 1), (2, 2), (2, 2)]
    assert [origin_of(conv.stride[0]) for conv in model] == expected
    assert [origin_of(conv.stride[1]) for conv in model] == expected  # _pair repeats the literal
    assert origin_of(model[0].kernel_size[0]) == locate(blocks, "(16, 3, 2)", "(16, ")
    assert origin_of(model[0].dilation[0]) is None  # torch's own default: not an analyzed file
    # "é€" precedes the partial's literal: counted in UTF-8 bytes, its column would be larger.
    partial_line = net.read_text(encoding="utf-8").splitlines()[expected[3].line - 1]
    assert len(partial_line[: expected[3].column - 1].encode()) > expected[3].column - 1


def test_override_changes_the_value_but_not_the_origin_nor_the_file(package):
    blocks = package / "blocks.py"
    before = blocks.read_bytes()
    target = locate(blocks, "(16, 3, 2)", "(16, 3, ")
    model = build(package, {(str(blocks), target.line, target.column): 1})
    assert model[0].stride == (1, 1) and origin_of(model[0].stride[0]) == target
    assert blocks.read_bytes() == before
    assert build(package)[0].stride == (2, 2)  # a later import starts afresh


def test_stale_bytecode_is_neither_read_nor_written(package, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    blocks = package / "blocks.py"
    real_source = blocks.read_text(encoding="utf-8")
    # Bytecode of a same-sized variant with stride 5, stamped with the real file's mtime:
    # a normal import trusts it.
    blocks.write_text(real_source.replace("(16, 3, 2)", "(16, 3, 5)"), encoding="utf-8")
    stale = Path(py_compile.compile(str(blocks), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP))
    stamp = blocks.stat().st_mtime_ns
    blocks.write_text(real_source, encoding="utf-8")
    os.utime(blocks, ns=(stamp, stamp))
    probe_spec = importlib.util.spec_from_file_location("stale_blocks_probe", blocks)
    probe = importlib.util.module_from_spec(probe_spec)
    probe_spec.loader.exec_module(probe)
    assert probe.CFG[0][2] == 5  # the trap is armed
    cache_before = {p.name: p.read_bytes() for p in stale.parent.iterdir()}

    assert build(package)[0].stride == (2, 2)
    assert {p.name: p.read_bytes() for p in stale.parent.iterdir()} == cache_before


def test_standalone_files_with_the_same_stem_do_not_collide(sandbox):
    for folder, value in (("a", 3), ("b", 4)):
        (sandbox / folder).mkdir()
        (sandbox / folder / "model.py").write_text(f"SIZE = {value}\n")
    first, second = (import_file(sandbox / folder / "model.py", []) for folder in ("a", "b"))
    assert (first.SIZE, second.SIZE) == (3, 4) and first.__name__ != second.__name__
    assert origin_of(second.SIZE) == Origin(str(sandbox / "b" / "model.py"), 1, 8, 1, 9)


# ---------------------------------------------------------------------------------------
# torchvision, in a subprocess so that its instrumented import stays out of this process
# ---------------------------------------------------------------------------------------

TORCHVISION_SCRIPT = """
import dataclasses, json, pathlib, sys
import torch
from rflint.source.literals import instrumented_imports, origin_of
with instrumented_imports(pathlib.Path(sys.argv[1]).rglob("*.py")):
    import torchvision
with torch.device("meta"):
    model = torchvision.models.mobilenet_v3_large()
conv = model.get_submodule("features.13.block.1.0")
print(json.dumps({"stride": conv.stride, "origin": dataclasses.asdict(origin_of(conv.stride[0]))}))
"""


def test_torchvision_mobilenet_v3_stride_origin():
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        pytest.skip("torchvision is not installed")
    models = Path(spec.submodule_search_locations[0]) / "models"
    # conftest's PYTHONPATH carries the shim that makes the CUDA torchvision wheel importable.
    python_path = [str(Path(rflint.__file__).parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    command = [sys.executable, "-c", TORCHVISION_SCRIPT, str(models)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    line = 'bneck_conf(112, 5, 672, 160 // reduce_divider, True, "HS", 2, dilation)'
    expected = locate(models / "mobilenetv3.py", line, '"HS", ')
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"stride": [2, 2], "origin": dataclasses.asdict(expected)}
