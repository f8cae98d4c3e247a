"""Tests for rflint.rewrite: only a literal's characters change, atomically, or nothing does."""

import os
import stat

import pytest

from rflint.diagnostics import Edit
from rflint.rewrite import RewriteError, apply_edits, file_sha256, unified_diff, write_atomically

CONV = """\
from torch import nn

conv = nn.Conv2d(
    64, 128, kernel_size=3,
    stride = 2,   # downsample
    padding=1,
)
"""


def literal_edit(path, line: int, column: int, old: str, new: str) -> Edit:
    return Edit(str(path), line, column, line, column + len(old), old, new)


@pytest.fixture
def conv_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(CONV)
    return path


def test_only_the_literal_changes_comments_and_spacing_stay(conv_file):
    new_text = apply_edits(conv_file, [literal_edit(conv_file, 5, 14, "2", "1")], file_sha256(conv_file))
    assert new_text == CONV.replace("stride = 2,   # downsample", "stride = 1,   # downsample")
    assert conv_file.read_text() == CONV  # apply_edits writes nothing


def test_write_keeps_mode_and_leaves_no_temporary_file(conv_file):
    conv_file.chmod(0o754)
    digest = file_sha256(conv_file)
    write_atomically(conv_file, apply_edits(conv_file, [literal_edit(conv_file, 5, 14, "2", "1")], digest), digest)
    assert "stride = 1,   # downsample" in conv_file.read_text()
    assert stat.S_IMODE(conv_file.stat().st_mode) == 0o754
    assert os.listdir(conv_file.parent) == ["net.py"]


def test_file_changed_since_analysis_is_refused_byte_for_byte(conv_file):
    digest = file_sha256(conv_file)
    edited = CONV.replace("64, 128", "64, 256").encode()
    conv_file.write_bytes(edited)
    with pytest.raises(RewriteError, match="changed since it was analysed"):
        apply_edits(conv_file, [literal_edit(conv_file, 5, 14, "2", "1")], digest)
    with pytest.raises(RewriteError, match="changed since it was analysed"):
        write_atomically(conv_file, CONV, digest)
    assert conv_file.read_bytes() == edited
    assert os.listdir(conv_file.parent) == ["net.py"]


@pytest.mark.parametrize(
    "line, column, old",
    [
        (5, 5, "stride"),  # a name
        (5, 13, "="),  # between tokens
        (5, 14, "3"),  # the literal there is spelled 2
        (4, 5, "6"),  # inside the literal 64
    ],
)
def test_edit_not_at_an_integer_literal_raises(conv_file, line, column, old):
    with pytest.raises(RewriteError, match=f"{line}:{column}: no integer literal"):
        apply_edits(conv_file, [literal_edit(conv_file, line, column, old, "1")], file_sha256(conv_file))


def test_float_literal_is_not_an_integer_literal(tmp_path):
    path = tmp_path / "pool.py"
    path.write_text("scale = 2.0\n")
    with pytest.raises(RewriteError, match="no integer literal"):
        apply_edits(path, [literal_edit(path, 1, 9, "2.0", "1")], file_sha256(path))


def test_new_text_must_be_an_integer_literal(conv_file):
    with pytest.raises(RewriteError, match="is not an integer literal"):
        apply_edits(conv_file, [literal_edit(conv_file, 5, 14, "2", "stride")], file_sha256(conv_file))


def test_several_literals_on_one_line_columns_in_characters_and_line_ends_kept(tmp_path):
    # CRLF line ends, a non-ASCII character before the literals (columns count characters).
    source = "# é\r\nblock = Block(kernel_size=(4, 4), stride=(4, 4))  # patchify\r\n"
    path = tmp_path / "stem.py"
    path.write_bytes(source.encode())
    edits = [literal_edit(path, 2, column, "4", "2") for column in (28, 31, 43, 46)]
    new_text = apply_edits(path, reversed(edits), file_sha256(path))
    assert new_text == "# é\r\nblock = Block(kernel_size=(2, 2), stride=(2, 2))  # patchify\r\n"


def test_encoding_of_the_file_is_kept(tmp_path):
    path = tmp_path / "latin.py"
    source = "# -*- coding: latin-1 -*-\nname = 'Müller'; stride = 2\n"
    path.write_bytes(source.encode("latin-1"))
    digest = file_sha256(path)
    write_atomically(path, apply_edits(path, [literal_edit(path, 2, 27, "2", "1")], digest), digest)
    assert path.read_bytes() == source.replace("stride = 2", "stride = 1").encode("latin-1")


def test_conflicting_edits_and_edits_of_another_file_raise(conv_file, tmp_path):
    digest = file_sha256(conv_file)
    with pytest.raises(RewriteError, match="conflicting edits"):
        apply_edits(conv_file, [literal_edit(conv_file, 5, 14, "2", new) for new in ("1", "3")], digest)
    with pytest.raises(RewriteError, match="an edit for another file"):
        apply_edits(conv_file, [literal_edit(tmp_path / "other.py", 5, 14, "2", "1")], digest)


def test_the_same_edit_twice_is_applied_once(conv_file):
    edit = literal_edit(conv_file, 5, 14, "2", "1")
    assert apply_edits(conv_file, [edit, edit], file_sha256(conv_file)).count("stride = 1") == 1


def test_unified_diff():
    new_text = CONV.replace("stride = 2", "stride = 1")
    assert unified_diff("models/net.py", CONV, new_text) == (
        "--- models/net.py\n"
        "+++ models/net.py\n"
        "@@ -2,6 +2,6 @@\n"
        " \n"
        " conv = nn.Conv2d(\n"
        "     64, 128, kernel_size=3,\n"
        "-    stride = 2,   # downsample\n"
        "+    stride = 1,   # downsample\n"
        "     padding=1,\n"
        " )\n"
    )
    assert unified_diff("net.py", CONV, CONV) == ""


def test_unified_diff_marks_a_missing_final_newline():
    assert unified_diff("a.py", "x = 2", "x = 1").splitlines()[-4:] == [
        "-x = 2",
        "\\ No newline at end of file",
        "+x = 1",
        "\\ No newline at end of file",
    ]
