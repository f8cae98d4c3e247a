"""A slow fix search or a slow model costs only what it did not finish: the file's other
models keep their diagnostics (per-model results survive a timeout; the fix search stops
at a deadline inside ``--timeout``). Deterministic: whichever of the fix search's deadline
or the runner's kill stops a slow search, the output is the same."""

import json
import subprocess
import sys

import jsonschema
import pytest

from helpers import REPO, rflint

NETS = 12


def shared_table(trial_seconds: float) -> str:
    """``NETS`` models built by one function: a fix of its stride literal is verified on
    every one of them, and each such rebuild (a stride that differs from the file's) sleeps."""
    factories = "".join(f"\n\ndef net_{i}() -> nn.Sequential:\n    return _net()\n" for i in range(NETS))
    return f'''\
import time

from torch import nn


def _net() -> nn.Sequential:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.Conv2d(8, 8, 3, padding=1),
    )
    if [conv.stride for conv in model] != [(2, 2), (2, 2), (1, 1)]:
        time.sleep({trial_seconds})  # a fix trial: slow; the lint itself is fast
    return model
{factories}'''


HANGS = '''\
import time

from torch import nn


def a_fast() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                         nn.Conv2d(8, 8, 3, padding=1))


def b_hangs() -> nn.Sequential:
    time.sleep(600)


def c_not_reached() -> nn.Sequential:
    return a_fast()


def d_not_reached() -> nn.Sequential:
    return a_fast()
'''

TIMED_OUT = ("[b_hangs] cannot build b_hangs: timed out after 3 s;"
             " 2 more models not analysed: the file's time ran out (--timeout raises it)")
NOTE = "no fix: the fix search stopped when the file's time (--timeout {} s) ran out; a larger --timeout lets it finish"


def lint(folder, *args):
    return rflint(".", "--input-res", "12", "--no-cache", *args, cwd=folder, timeout=300)


def rf003s(run) -> list[dict]:
    """The RF003 diagnostics of a JSON run, after checking that none is an RF9xx failure."""
    diagnostics = json.loads(run.stdout)["diagnostics"]
    assert not [d for d in diagnostics if d["code"].startswith("RF9")]
    return [d for d in diagnostics if d["code"] == "RF003"]


@pytest.fixture(scope="module")
def slow_trials(tmp_path_factory):
    """Trials of 0.8 s (under the 1-s reporting margin, so the deadline stops the search
    before the runner would kill it) on twelve models: more than the 6-s limit allows."""
    folder = tmp_path_factory.mktemp("slow_trials")
    (folder / "table.py").write_text(shared_table(0.8))
    return folder


def test_a_slow_fix_search_keeps_every_diagnostic_and_says_why_fixes_are_missing(slow_trials):
    run = lint(slow_trials, "--format", "json", "--timeout", "6")
    assert run.returncode == 1, run.stderr
    diagnostics = rf003s(run)
    assert sorted(m for d in diagnostics for m in d["models"]) == sorted(f"net_{i}" for i in range(NETS))
    unfixed = [d for d in diagnostics if d["fix"] is None]
    assert unfixed, "twelve 0.8-s trials per candidate do not fit in 6 s"
    assert all(d["fix_note"] == NOTE.format(6) for d in unfixed)


def test_the_note_is_a_line_of_full_and_of_show_fixes(slow_trials):
    full = lint(slow_trials, "--format", "full", "--timeout", "6")
    assert full.stdout.count("RF003") >= NETS and f"note: {NOTE.format(6)}" in full.stdout.splitlines()
    shown = lint(slow_trials, "--show-fixes", "--timeout", "6")
    assert any(line.startswith("- table.py:") and line.endswith(NOTE.format(6)) for line in shown.stdout.splitlines())
    assert "RF902" not in full.stdout + shown.stdout


def test_a_fix_trial_that_hangs_costs_only_the_fixes(tmp_path):
    """The first trial starts before the deadline and never ends: the runner kills the file's
    process; every model was analysed, so each keeps its RF003, with the note."""
    (tmp_path / "table.py").write_text(shared_table(600))
    run = lint(tmp_path, "--format", "json", "--timeout", "3")
    diagnostics = rf003s(run)
    assert len(diagnostics) == NETS
    assert all(d["fix"] is None and d["fix_note"] == NOTE.format(3) for d in diagnostics)
    assert run.returncode == 1 and "Traceback" not in run.stderr


def test_fix_writes_nothing_when_no_fix_was_verified_in_time(tmp_path):
    (tmp_path / "table.py").write_text(source := shared_table(600))
    run = lint(tmp_path, "--fix", "--timeout", "3")
    assert (tmp_path / "table.py").read_text() == source
    assert run.returncode == 1 and run.stdout.count(" RF003 ") == NETS and "RF902" not in run.stdout


DEADLINE_PASSED = """
import json, sys
from rflint.run.options import Job
from rflint.run.worker import lint_file

file = sys.argv[1]
report = lint_file(file, Job(frozenset([file]), (12, 12), timeout=0.001, search_fixes=True), lambda message: None)
needing = [m for m in report.models if m.result is not None and not m.result.fully_utilized()]
print(json.dumps({"complete": report.complete, "needing": len(needing),
                  "fixes": sum(len(m.fixes) for m in needing), "notes": sorted({m.fix_note for m in needing})}))
"""


def test_the_deadline_stops_the_search_before_any_rebuild_once_it_has_passed(tmp_path):
    """``lint_file`` with no runner to kill it (in a process of its own: it pins the sources
    it imports): only the deadline can stop the search, here past before the search starts."""
    (tmp_path / "table.py").write_text(shared_table(0))
    run = subprocess.run([sys.executable, "-c", DEADLINE_PASSED, str(tmp_path / "table.py")],
                         capture_output=True, text=True, timeout=300)
    assert json.loads(run.stdout) == {"complete": False, "needing": NETS, "fixes": 0, "notes": [NOTE.format(0.001)]}


@pytest.fixture(scope="module")
def hangs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hangs")
    (folder / "hangs.py").write_text(HANGS)
    return folder


def test_a_model_that_hangs_costs_only_itself_and_the_models_after_it(hangs):
    run = lint(hangs, "--timeout", "3")
    lines = run.stdout.splitlines()
    assert run.returncode == 1
    assert any(line.startswith("hangs.py:6:1: RF003 [a_fast]") for line in lines), lines
    assert f"hangs.py:1:1: RF902 {TIMED_OUT}" in lines
    assert not any("not_reached" in line.split("RF902")[0] for line in lines)


def test_a_partial_report_is_valid_in_every_machine_format_and_never_cached(hangs):
    document = json.loads(lint(hangs, "--format", "json", "--timeout", "3").stdout)
    assert [(d["code"], d["models"]) for d in document["diagnostics"] if d["code"] != "RF002"] == [
        ("RF902", ["b_hangs"]), ("RF003", ["a_fast"])]
    assert [m["name"] for m in document["models"]] == ["a_fast"]
    sarif = json.loads(lint(hangs, "--format", "sarif", "--timeout", "3").stdout)
    schema = json.loads((REPO / "tests" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == {"RF002", "RF003", "RF902"}
    github = lint(hangs, "--format", "github", "--timeout", "3").stdout.splitlines()
    assert [line.partition(",file=hangs.py,")[0] for line in github] == [
        "::error title=rflint (RF902)", "::error title=rflint (RF003)", "::error title=rflint (RF002)"]
    for _ in range(2):  # a timeout depends on the machine's load: the second run analyses again
        cached = rflint(".", "--input-res", "12", "--timeout", "3", "--verbose", cwd=hangs, timeout=300)
    assert f"hangs.py:1:1: RF902 {TIMED_OUT}" in cached.stdout.splitlines()
    assert "rflint: info: hangs.py: analyzed (1 model)" in cached.stderr.splitlines(), cached.stderr
