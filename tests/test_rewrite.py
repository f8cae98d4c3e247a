"""Tests for rflint.fix.rewrite: only a literal's characters change, atomically, or nothing does."""

import errno
import fcntl
import os
import stat
import subprocess
import tempfile
import threading

import pytest

from rflint.core.diagnostics import Edit
from rflint.fix.rewrite import RewriteError, apply_edits, file_sha256, new_bytes, refusal, remove_stale_temporaries, unified_diff, write_atomically

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
    assert unified_diff("models/net.py", CONV.encode(), new_text.encode()) == (
        b"--- a/models/net.py\n"
        b"+++ b/models/net.py\n"
        b"@@ -2,6 +2,6 @@\n"
        b" \n"
        b" conv = nn.Conv2d(\n"
        b"     64, 128, kernel_size=3,\n"
        b"-    stride = 2,   # downsample\n"
        b"+    stride = 1,   # downsample\n"
        b"     padding=1,\n"
        b" )\n"
    )
    assert unified_diff("net.py", CONV.encode(), CONV.encode()) == b""


def test_unified_diff_marks_a_missing_final_newline():
    assert unified_diff("a.py", b"x = 2", b"x = 1").splitlines()[-4:] == [
        b"-x = 2",
        b"\\ No newline at end of file",
        b"+x = 1",
        b"\\ No newline at end of file",
    ]


# Files as users have them: the diff must apply with git apply and patch, byte for byte.
SOURCES = {
    "lf": CONV.encode(),
    "crlf": CONV.replace("\n", "\r\n").encode(),
    "mixed": CONV.replace("padding=1,\n", "padding=1,\r\n").replace("kernel_size=3,\n", "kernel_size=3,\r").encode(),
    "bom": b"\xef\xbb\xbf" + CONV.replace("\n", "\r\n", 1).encode(),
    "latin-1": ("# -*- coding: latin-1 -*-\n# M\u00fcller's net\n" + CONV).encode("latin-1"),
}


@pytest.mark.parametrize("kind", SOURCES)
def test_diff_applies_with_git_apply_and_patch(tmp_path, kind):
    path = tmp_path / "net.py"
    path.write_bytes(SOURCES[kind])
    line = 7 if kind == "latin-1" else 5
    new_text = apply_edits(path, [literal_edit(path, line, 14, "2", "1")], file_sha256(path))
    expected = new_bytes(path, new_text)
    assert expected == SOURCES[kind].replace(b"stride = 2", b"stride = 1")  # encoding, BOM and line ends kept
    diff = unified_diff("net.py", SOURCES[kind], expected)
    (tmp_path / "fix.diff").write_bytes(diff)
    for command in (["git", "apply", "fix.diff"], ["patch", "-p1", "--quiet", "-i", "fix.diff"]):
        path.write_bytes(SOURCES[kind])
        subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
        assert path.read_bytes() == expected, command


def fix_file(path, expected=None):
    digest = expected or file_sha256(path)
    write_atomically(path, apply_edits(path, [literal_edit(path, 5, 14, "2", "1")], digest), digest)


def test_write_keeps_owner_and_group(conv_file):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(conv_file, 1234, 5678)
    fix_file(conv_file)
    status = conv_file.stat()
    assert (status.st_uid, status.st_gid) == (1234, 5678)
    assert "stride = 1" in conv_file.read_text()


def test_read_only_file_is_never_written(conv_file):
    conv_file.chmod(0o444)
    with pytest.raises(RewriteError, match=r"net.py: read-only \(mode 0444\); not written$"):
        fix_file(conv_file)
    assert conv_file.read_text() == CONV
    assert refusal(conv_file, file_sha256(conv_file)) == "read-only (mode 0444); not written"


def test_hard_link_is_refused_not_split(conv_file):
    link = conv_file.parent / "link.py"
    os.link(conv_file, link)
    with pytest.raises(RewriteError, match="has 2 hard links, which a rewrite would split; not written"):
        fix_file(conv_file)
    assert conv_file.read_text() == link.read_text() == CONV
    assert os.stat(conv_file).st_ino == os.stat(link).st_ino


def test_symlink_target_is_rewritten_and_the_link_kept(conv_file):
    link = conv_file.parent / "link.py"
    link.symlink_to(conv_file.name)
    fix_file(link)
    assert link.is_symlink() and "stride = 1" in conv_file.read_text()


@pytest.mark.parametrize("fault, where, reason", [
    (errno.EXDEV, "replace", "Invalid cross-device link"),
    (errno.EIO, "fsync", "Input/output error"),
    (errno.EACCES, "mkstemp", "Permission denied"),
])
def test_failed_write_leaves_the_file_and_no_temporary(conv_file, monkeypatch, fault, where, reason):
    def failing(*args, **kwargs):
        raise OSError(fault, os.strerror(fault))

    target = {"replace": os, "fsync": os, "mkstemp": tempfile}[where]
    monkeypatch.setattr(target, where, failing)
    with pytest.raises(RewriteError, match=f"net.py: cannot write: {reason}$"):
        fix_file(conv_file)
    assert conv_file.read_text() == CONV
    assert os.listdir(conv_file.parent) == ["net.py"]


def test_second_writer_with_the_same_analysis_is_refused(conv_file):
    digest = file_sha256(conv_file)
    fix_file(conv_file, digest)
    fixed = conv_file.read_bytes()
    with pytest.raises(RewriteError, match="changed since it was analysed"):
        fix_file(conv_file, digest)
    assert conv_file.read_bytes() == fixed


def test_writer_waits_for_the_lock_and_refuses_a_file_replaced_meanwhile(conv_file):
    """Two concurrent runs: the one that waited finds the file replaced by the other."""
    digest = file_sha256(conv_file)
    new_text = apply_edits(conv_file, [literal_edit(conv_file, 5, 14, "2", "1")], digest)
    with open(conv_file, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        waiting = threading.Thread(target=lambda: errors.append(_raised(write_atomically, conv_file, new_text, digest)))
        errors: list = []
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # blocked on the lock
        os.replace(_copy(conv_file, CONV.replace("64, 128", "64, 256")), conv_file)  # the other run's write
    waiting.join()
    assert "changed since it was analysed (rewritten by another process)" in str(errors[0])
    assert "64, 256" in conv_file.read_text()


def _raised(function, *args):
    try:
        function(*args)
    except RewriteError as error:
        return error
    return None


def _copy(path, text):
    other = path.parent / "other.tmp"
    other.write_text(text)
    return other


def test_stale_temporaries_are_removed_unless_locked(tmp_path):
    stale, busy, unrelated = (tmp_path / name for name in (".net.py.a1b2c3d4.rflint", ".net.py.zz99yy88.rflint",
                                                          ".net.py.swp"))
    for path in (stale, busy, unrelated):
        path.write_text("partial")
    with open(busy, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert remove_stale_temporaries([tmp_path]) == [str(stale)]
    assert not stale.exists() and busy.exists() and unrelated.exists()
