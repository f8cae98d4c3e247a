"""``rflint --fix`` and ``--diff`` on files as users have them, run as a user runs them.

Encodings and line ends, read-only files, hard links, a write that fails, a file edited
while rflint analysed it, two runs at once, a run killed at any moment: each file ends
byte-identical to the original or to the fixed version, problems are one warning line
naming the file, and the run goes on with the other files.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import rflint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fixes"
MODEL = (FIXTURES / "keyword_stride.py").read_bytes()  # at 24 px: RF003 + RF002, one safe stride fix
UNFIXED, FIXED = b"stride = 2,   # downsample", b"stride = 1,   # downsample"

ENCODINGS = {
    "lf.py": MODEL,
    "crlf.py": MODEL.replace(b"\n", b"\r\n"),
    "mixed.py": MODEL.replace(b"padding=1,\n", b"padding=1,\r\n"),
    "bom.py": b"\xef\xbb\xbf" + MODEL.replace(b"\n", b"\r\n", 3),
    "latin1.py": "# -*- coding: latin-1 -*-\n# M\u00fcller's net\n".encode("latin-1") + MODEL,
}


def project(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def fixed(data: bytes) -> bytes:
    assert data.count(UNFIXED) == 1
    return data.replace(UNFIXED, FIXED)


def fix(folder: Path, *args, **kwargs) -> subprocess.CompletedProcess:
    return rflint(".", "--input-res", "24", "--fix", "--no-cache", *args, cwd=folder, **kwargs)


def test_files_are_fixed_in_their_own_encoding_and_line_ends(tmp_path):
    folder = project(tmp_path / "p", ENCODINGS)
    run = fix(folder)
    assert run.returncode == 0, run.stdout + run.stderr
    for name, data in ENCODINGS.items():
        assert (folder / name).read_bytes() == fixed(data), name


def test_diff_applies_with_git_apply_and_patch(tmp_path):
    folder = project(tmp_path / "p", ENCODINGS)
    run = subprocess.run([sys.executable, "-m", "rflint", ".", "--input-res", "24", "--diff", "--no-cache"],
                         cwd=folder, capture_output=True, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert run.returncode == 1, run.stderr
    assert run.stdout.count(b"+++ b/") == len(ENCODINGS)
    (tmp_path / "fix.diff").write_bytes(run.stdout)
    for command in (["git", "apply", "../fix.diff"], ["patch", "-p1", "--quiet", "-i", "../fix.diff"]):
        project(folder, ENCODINGS)
        subprocess.run(command, cwd=folder, check=True, capture_output=True)
        for name, data in ENCODINGS.items():
            assert (folder / name).read_bytes() == fixed(data), (command, name)


def test_read_only_file_is_one_line_and_the_others_are_fixed(tmp_path):
    folder = project(tmp_path / "p", {"locked.py": MODEL, "open.py": MODEL})
    (folder / "locked.py").chmod(0o444)
    run = fix(folder)
    assert run.returncode == 1
    assert "rflint: warning: not fixing locked.py: read-only (mode 0444); not written\n" in run.stderr
    assert "Traceback" not in run.stderr
    assert (folder / "locked.py").read_bytes() == MODEL
    assert (folder / "open.py").read_bytes() == fixed(MODEL)
    assert "locked.py:6:1: RF003" in run.stdout and "open.py" not in run.stdout


def test_hard_link_is_kept_by_refusing(tmp_path):
    folder = project(tmp_path / "p", {"net.py": MODEL})
    os.link(folder / "net.py", tmp_path / "elsewhere.py")
    run = fix(folder)
    assert run.returncode == 1
    assert "not fixing net.py: has 2 hard links, which a rewrite would split; not written" in run.stderr
    assert os.stat(folder / "net.py").st_ino == os.stat(tmp_path / "elsewhere.py").st_ino
    assert (folder / "net.py").read_bytes() == MODEL


def test_owner_group_and_mode_are_kept(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    folder = project(tmp_path / "p", {"net.py": MODEL})
    os.chown(folder / "net.py", 1234, 5678)
    (folder / "net.py").chmod(0o640)
    assert fix(folder).returncode == 0
    status = (folder / "net.py").stat()
    assert (status.st_uid, status.st_gid, status.st_mode & 0o7777) == (1234, 5678, 0o640)
    assert (folder / "net.py").read_bytes() == fixed(MODEL)


FAILING_RENAME = """
import errno, os, sys
from rflint.cli import main
rename = os.replace
def failing(source, target):
    if os.path.basename(target) == "broken.py":
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    return rename(source, target)
os.replace = failing
sys.exit(main(sys.argv[1:]))
"""


def test_failed_write_is_one_line_and_the_run_goes_on(tmp_path):
    folder = project(tmp_path / "p", {"broken.py": MODEL, "fine.py": MODEL})
    run = subprocess.run([sys.executable, "-c", FAILING_RENAME, ".", "--input-res", "24", "--fix", "--no-cache"],
                         cwd=folder, capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr == "rflint: warning: not fixing broken.py: cannot write: Input/output error\n"
    assert (folder / "broken.py").read_bytes() == MODEL
    assert (folder / "fine.py").read_bytes() == fixed(MODEL)
    assert sorted(os.listdir(folder)) == ["broken.py", "fine.py"]
    assert "Found 4 errors (2 fixed, 2 remaining)." in run.stdout  # fine.py's RF003 and RF002 went


EDITED_WHILE_ANALYSED = MODEL.replace(b'from torch import nn\n', b'''from torch import nn
import os

_EDITED = False


def _edit_this_file():
    """What an editor saving the file during the analysis does: a line inserted above."""
    global _EDITED
    marker = __file__ + ".edited"
    if not os.path.exists(marker):
        open(marker, "w").close()
        with open(__file__) as handle:
            text = handle.read()
        with open(__file__, "w") as handle:
            handle.write("# a line the user inserted\\n" + text)
''').replace(b"    return nn.Sequential(\n", b"    _edit_this_file()\n    return nn.Sequential(\n", 1)


def test_file_edited_during_the_analysis_is_refused(tmp_path):
    folder = project(tmp_path / "p", {"net.py": EDITED_WHILE_ANALYSED})
    run = fix(folder)
    assert run.returncode == 1
    assert "rflint: warning: not fixing net.py: changed since it was analysed; run rflint again\n" in run.stderr
    assert (folder / "net.py").read_bytes() == b"# a line the user inserted\n" + EDITED_WHILE_ANALYSED


def test_two_concurrent_fix_runs(tmp_path):
    folder = project(tmp_path / "p", {"a.py": MODEL, "b.py": MODEL})
    command = [sys.executable, "-m", "rflint", ".", "--input-res", "24", "--fix", "--no-cache"]
    runs = [subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode in (0, 1) and "Traceback" not in stderr, stderr
        assert all(line.startswith("rflint: warning: not fixing ") and "changed since it was analysed" in line
                   for line in stderr.splitlines()), stderr
    assert (folder / "a.py").read_bytes() == (folder / "b.py").read_bytes() == fixed(MODEL)
    assert sorted(os.listdir(folder)) == ["a.py", "b.py"]


def test_the_next_run_removes_temporaries_of_an_interrupted_write(tmp_path):
    folder = project(tmp_path / "p", {"net.py": MODEL, ".net.py.k2j4h6g8.rflint": MODEL[:100]})
    run = rflint(".", "--input-res", "24", "--no-cache", "-v", cwd=folder)
    assert "rflint: info: removed .net.py.k2j4h6g8.rflint, left by an interrupted --fix" in run.stderr
    assert sorted(os.listdir(folder)) == ["net.py"]


def test_fixed_counts_the_diagnostics_that_disappeared(tmp_path):
    folder = project(tmp_path / "p", {"net.py": MODEL})
    before = rflint(".", "--input-res", "24", "--no-cache", cwd=folder)
    assert "\nFound 2 errors.\n" in before.stdout  # RF003 and RF002, both gone after one fix
    assert fix(folder).stdout == "Found 2 errors (2 fixed, 0 remaining).\n1 model analyzed, 0 skipped.\n"


@pytest.mark.parametrize("trials", [5, pytest.param(100, marks=pytest.mark.slow)])
def test_fix_killed_at_random_moments(tmp_path, trials):
    """SIGKILL at a random moment of a ``--fix`` run, up to a little after its last write:
    every file is the original or the fixed version byte for byte, and the next run leaves
    no temporary file behind. Each killed run starts from a copy of a cache that holds the
    original files' analysis, so it reaches the writes without importing torch."""
    names = [f"net{i}.py" for i in range(3)]
    folder = project(tmp_path / "p", {name: MODEL for name in names})
    warm = tmp_path / "warm"
    command = [sys.executable, "-m", "rflint", ".", "--input-res", "24", "--fix", "--cache-dir"]
    subprocess.run([*command, str(warm), "--diff"], cwd=folder, capture_output=True)  # caches the originals
    until_written = _time_to_last_write(command, folder, names, warm, tmp_path / "calibration")
    chance = random.Random(14)
    for trial in range(trials):
        project(folder, {name: MODEL for name in names})
        cache = shutil.copytree(warm, tmp_path / f"cache{trial}")
        run = subprocess.Popen([*command, str(cache)], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(chance.uniform(0, 1.2 * until_written))
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert {(folder / name).read_bytes() for name in names} <= {MODEL, fixed(MODEL)}
        subprocess.run([*command, str(cache)], cwd=folder, capture_output=True, check=True)
        assert sorted(os.listdir(folder)) == names
        assert all((folder / name).read_bytes() == fixed(MODEL) for name in names)
        shutil.rmtree(cache)


def _time_to_last_write(command, folder: Path, names, warm: Path, cache: Path) -> float:
    """How long a run with the warm cache takes to write its last fix (polled)."""
    shutil.copytree(warm, cache)
    started = time.monotonic()
    run = subprocess.Popen([*command, str(cache)], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while run.poll() is None and any((folder / name).read_bytes() == MODEL for name in names):
        time.sleep(0.01)
    written = time.monotonic() - started
    run.wait()
    return written
