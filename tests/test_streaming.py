"""Results stream as files finish (concise and full); machine formats and the summary come
at the end; an interrupted run keeps what it found. Read from the stream, never timed."""

import os
import signal
import subprocess
import sys

import pytest

from rflint.core.diagnostics import FileReport
from rflint.core.lint import collect
from rflint.run.session import Streamer

# Four stride-2 3x3 convs: r_min = 46 >= 32, so a diagnostic at --input-res 32.
NET = """from torch import nn


def {name}() -> nn.Module:
{wait}    return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=2, padding=1) for i in range(5)])
"""
# Builds only once the test has read the fast file's diagnostic (it then creates "release");
# gives up after a while, noting so, which the test reads as "the output did not stream".
WAIT = """    import pathlib, time
    here = pathlib.Path(__file__).parent
    for _ in range(1200):
        if (here / "release").exists():
            break
        time.sleep(0.1)
    else:
        (here / "gave-up").write_text("")
"""
HANG_LIMIT = 300


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a_fast.py").write_text(NET.format(name="fast_net", wait=""))
    (tmp_path / "b_slow.py").write_text(NET.format(name="slow_net", wait=WAIT))
    return tmp_path


def start(folder, *options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rflint", ".", "--input-res", "32", "--no-cache", "--timeout", "200",
                             *options], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def read_until(process, marker: str) -> list[str]:
    """Lines of stdout up to the first one containing ``marker`` (all of them if it never comes)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            break
    return lines


def finish(process) -> tuple[str, str]:
    try:
        return process.communicate(timeout=HANG_LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"rflint did not end within {HANG_LIMIT} s")


@pytest.mark.parametrize("output", ["concise", "full"])
def test_a_finished_file_is_shown_while_a_slow_one_still_builds(folder, output):
    """Before: nothing was printed until every file was done (the slow file waits for the
    fast file's line, so it gave up and the line came after)."""
    process = start(folder, "--format", output)
    shown = read_until(process, "a_fast.py:")
    released = not (folder / "gave-up").exists()
    (folder / "release").write_text("")
    rest, _ = finish(process)
    assert shown[-1].startswith("a_fast.py:") and " RF00" in shown[-1]
    assert released, "the fast file's diagnostic came only after the slow file gave up waiting"
    assert "b_slow.py:" in rest and "Found " in rest and "Found " not in "".join(shown)
    assert process.returncode == 1


def test_ctrl_c_after_the_first_file_keeps_its_output(folder):
    process = start(folder)
    shown = read_until(process, "a_fast.py:")
    process.send_signal(signal.SIGINT)
    rest, errors = finish(process)
    assert shown[-1].startswith("a_fast.py:")
    assert process.returncode == 130 and "rflint: interrupted" in errors
    assert "b_slow.py" not in rest and "Found " not in rest  # no summary of a run that did not end


def test_machine_formats_are_one_document_at_the_end(folder):
    (folder / "release").write_text("")
    process = start(folder, "--format", "json")
    output, _ = finish(process)
    assert output.lstrip().startswith("{") and '"a_fast.py"' not in output.split("\n")[0]
    assert process.returncode == 1


def report_of(file: str, code: str, line: int) -> FileReport:
    from rflint.core.diagnostics import failure

    return FileReport(file, diagnostics=[failure(code, file, line, 1, "cannot import: SyntaxError")])


class Args:
    format, quiet, unsafe_fixes = "concise", False, False


class FakeSession:
    """What Streamer asks of a session: its arguments, its filters and its summary."""

    args = Args()

    def filter(self, diagnostics):
        return diagnostics

    def summary(self, outcome):
        from rflint.report.summary import RunSummary

        return RunSummary(diagnostics=outcome.diagnostics, models=outcome.models, cwd="/")


def test_files_are_shown_in_path_order_and_an_interruption_shows_every_finished_one():
    shown = []
    streamer = Streamer(FakeSession(), shown.append)
    finish_file = streamer.expect(["/a.py", "/b.py", "/c.py"])
    finish_file(report_of("/b.py", "RF901", 2))
    assert shown == []  # b waits for a: a finished run prints in path order
    finish_file(report_of("/a.py", "RF901", 1))
    assert [text.split(":")[0] for text in shown] == ["a.py", "b.py"]
    streamer.expect(["/a.py", "/b.py", "/c.py"])
    shown.clear()
    finish_file = streamer.finish
    finish_file(report_of("/c.py", "RF901", 3))
    streamer.show_finished()  # Ctrl-C while a.py and b.py still run
    assert [text.split(":")[0] for text in shown] == ["c.py"]


def test_the_end_adds_only_what_the_files_did_not_show():
    from rflint.run.session import Outcome

    streamer = Streamer(FakeSession(), lambda text: None)
    finish_file = streamer.expect(["/a.py"])
    report = report_of("/a.py", "RF901", 1)
    finish_file(report)
    models, diagnostics = collect([report])
    merged = report_of("/z.py", "RF901", 9).diagnostics  # one only the run's cross-file view made
    rest = streamer.rest(Outcome(models, diagnostics + merged))
    assert rest.splitlines()[0].startswith("z.py:9:1: RF901") and "a.py" not in rest
    assert rest.splitlines()[-1] == "Found 2 errors."

