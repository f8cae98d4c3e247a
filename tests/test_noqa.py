"""Suppression comments (rflint/noqa.py)."""

from __future__ import annotations

import textwrap

import pytest

from rflint.core.diagnostics import Diagnostic
from rflint.core.noqa import ALL, NONE, covers, file_suppressions, model_suppressions, suppressed


def lines(source: str) -> list[str]:
    return textwrap.dedent(source).splitlines()


def diagnostic(code: str, line: int, end_line: int | None = None) -> Diagnostic:
    return Diagnostic(code, "msg", "/x/net.py", line, 5, end_line or line, 9, ("Net",))


@pytest.mark.parametrize(
    "comment, code, expected",
    [
        ("# noqa", "RF001", True),
        ("# NOQA", "RF002", True),
        ("# NoQa: RF001", "RF001", True),
        ("# noqa:RF001", "RF001", True),
        ("# noqa: RF001", "RF002", False),
        ("# noqa: RF001,RF002", "RF002", True),
        ("# noqa: RF001, RF003", "RF003", True),
        ("# noqa: RF001 RF003", "RF003", True),
        ("# noqa: RF0", "RF002", True),  # a listed code also matches as a prefix
        ("# noqa: RF0", "RF901", False),
        ("# noqa: rf001", "RF001", False),  # codes are case-sensitive, as in flake8
        ("# noqa: RF001 because the stem is special", "RF002", False),
        ("# noqa : RF001", "RF002", True),  # no colon right after noqa: bare, as in flake8
        ("# noqa: RF", "RF002", True),  # no readable code: bare, as in flake8
        ("#noqa:RF002", "RF002", True),
        ("# type: ignore  # noqa: RF002", "RF002", True),
        ("# a note about noqa", "RF001", False),
        ("# rflint: noqa", "RF001", False),  # a model- or file-level directive, not a line one
    ],
)
def test_line_noqa(comment, code, expected):
    source = ["import torch", f"conv = nn.Conv2d(3, 8, 3, stride=2)  {comment}"]
    assert suppressed(diagnostic(code, 2), source) is expected


def test_noqa_only_on_the_reported_line():
    source = lines(
        """\
        conv = nn.Conv2d(  # noqa: RF002
            3, 8, 3,
            stride=2,
        )  # noqa: RF001
        """
    )
    assert suppressed(diagnostic("RF002", 1, end_line=4), source)
    assert not suppressed(diagnostic("RF001", 1, end_line=4), source)
    assert not suppressed(diagnostic("RF001", 3), source)


def test_noqa_inside_a_string_does_not_count():
    source = lines(
        '''\
        doc = "# noqa"
        text = """
        conv = 1  # noqa
        """
        url = "x#noqa"  # a real comment
        '''
    )
    assert not any(suppressed(diagnostic("RF001", line), source) for line in range(1, 6))


def test_lines_with_endings_are_accepted():
    source = textwrap.dedent(
        """\
        a = 1
        b = 2  # noqa: RF001
        """
    ).splitlines(keepends=True)
    assert suppressed(diagnostic("RF001", 2), source)
    assert not suppressed(diagnostic("RF001", 1), source)


def test_model_level():
    source = lines(
        """\
        @register_model
        class Net(nn.Module):  # rflint: noqa
            def __init__(self):
                super().__init__()

        def small_net():  # RFLINT: NOQA: RF001, RF002
            return Net()

        def other():  # noqa
            return Net()
        """
    )
    assert model_suppressions(source, 2) is ALL
    assert model_suppressions(source, 6) == {"RF001", "RF002"}
    assert model_suppressions(source, 1) == NONE  # the decorator line is not the def line
    assert model_suppressions(source, 9) == NONE  # a plain noqa is a line directive
    assert file_suppressions(source) == NONE  # trailing directives are not file-level
    assert not suppressed(diagnostic("RF001", 3), source)


def test_file_level():
    source = lines(
        """\
        # rflint: noqa: RF001
        import torch

        class Net(nn.Module):
            # rflint: noqa: RF002
            def __init__(self):
                super().__init__()
        """
    )
    assert file_suppressions(source) == {"RF001", "RF002"}
    assert suppressed(diagnostic("RF001", 7), source)
    assert suppressed(diagnostic("RF002", 3), source)
    assert not suppressed(diagnostic("RF003", 7), source)
    assert model_suppressions(source, 4) == NONE


def test_bare_file_level_suppresses_everything():
    source = lines(
        """\
        import torch
            # rflint:noqa
        """
    )
    assert file_suppressions(source) is ALL
    assert suppressed(diagnostic("RF901", 1), source)


def test_directive_after_a_multiline_string_is_trailing():
    source = lines(
        '''\
        class Net(nn.Module): x = """
        doc"""  # rflint: noqa
        '''
    )
    assert file_suppressions(source) == NONE
    assert model_suppressions(source, 2) is ALL


def test_file_that_does_not_tokenize_keeps_the_comments_before_the_error():
    source = lines(
        """\
        a = 1  # noqa: RF001
        b = '''unterminated
        """
    )
    assert suppressed(diagnostic("RF001", 1), source)
    assert not suppressed(diagnostic("RF001", 2), source)


def test_covers():
    assert covers(ALL, "RF903")
    assert covers(frozenset({"RF9"}), "RF903")
    assert not covers(NONE, "RF001")
