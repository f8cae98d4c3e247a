"""The one fix that is not a literal change: ``AveragePooling2D(2)`` takes its stride from its
pool size, so its fix inserts ``, strides=N`` after the pool size literal; the rewrite
refuses anything that does not parse or adds more than that."""

import pytest

from rflint.core.diagnostics import Edit
from rflint.fix.rewrite import RewriteError, apply_edits, file_sha256

SOURCE = "x = layers.AveragePooling2D(2)(x)\ny = layers.AveragePooling2D((2, 2))(y)\nz = conv(3, 2)\n"


def rewrite(tmp_path, *edits):
    path = tmp_path / "net.py"
    path.write_text(SOURCE)
    return apply_edits(path, [Edit(str(path), *edit) for edit in edits], file_sha256(path))


def test_strides_inserted_after_the_pool_size(tmp_path):
    text = rewrite(tmp_path, (1, 30, 1, 30, "", ", strides=1"))
    assert text.splitlines()[0] == "x = layers.AveragePooling2D(2, strides=1)(x)"


def test_insertion_and_a_literal_change_together(tmp_path):
    text = rewrite(tmp_path, (1, 30, 1, 30, "", ", strides=1"), (3, 13, 3, 14, "2", "1"))
    assert text == SOURCE.replace("(2)(x)", "(2, strides=1)(x)").replace("conv(3, 2)", "conv(3, 1)")


def test_an_insertion_that_does_not_parse_is_refused(tmp_path):
    with pytest.raises(RewriteError, match="cannot parse"):
        rewrite(tmp_path, (2, 31, 2, 31, "", ", strides=1"))  # inside the tuple (2, 2)


def test_only_a_keyword_with_an_integer_may_be_inserted(tmp_path):
    with pytest.raises(RewriteError, match="not an integer literal"):
        rewrite(tmp_path, (1, 30, 1, 30, "", "; import os"))
