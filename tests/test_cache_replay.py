"""A warm run replays the last identical run's output: exactly what a full warm run would
print, with neither torch nor the rules imported, and never once anything it read changed."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import rflint

NET = textwrap.dedent('''\
    import os

    from torch import nn

    STRIDE = 1 + int(os.environ.get("NET_STRIDE", "1"))


    def net() -> nn.Sequential:
        return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=STRIDE, padding=1) for i in range(6)])
''')
SMALL = textwrap.dedent('''\
    from torch import nn


    def small() -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3))
''')
HEAVY = {"torch", "libcst", "rflint.core.rules", "rflint.core.diagnostics", "rflint.core.lint", "rflint.report",
         "rflint.run.runner", "importlib.metadata"}


def make_project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text(NET)
    (tmp_path / "pyproject.toml").write_text("[tool.rflint]\ninput-res = 32\n")
    return tmp_path


def imports(*args, cwd: Path, env=None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """A run under ``-X importtime``, and the modules it imported."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "rflint", *args], cwd=cwd, capture_output=True,
                         text=True, env={**os.environ, **(env or {})}, timeout=600)
    modules = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    run.stderr = "".join(line + "\n" for line in run.stderr.splitlines() if not line.startswith("import time:"))
    return run, modules


def warm_pair(repo: Path, *args, env=None) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess, set[str]]:
    """A warm run (every file from the cache, which records its output), then the same run
    again: the second should replay the first."""
    recorded = rflint(".", *args, cwd=repo, env=env)
    replayed, modules = imports(".", *args, cwd=repo, env=env)
    return recorded, replayed, modules


def test_an_identical_warm_run_replays_the_output_and_status_without_heavy_imports(tmp_path):
    repo = make_project(tmp_path)
    assert rflint(".", "--verbose", cwd=repo).returncode == 1  # cold: fills the cache
    recorded, replayed, modules = warm_pair(repo, "--verbose")
    assert "models/net.py: from the cache (1 model)" in recorded.stderr and "RF003 [net]" in recorded.stdout
    assert (replayed.stdout, replayed.stderr, replayed.returncode) == (recorded.stdout, recorded.stderr, 1)
    assert modules & HEAVY == set()
    assert "rflint.run.cache" in modules


def test_each_input_of_the_output_ends_the_replay(tmp_path):
    """Options, the config, the files' content, a new file, an environment variable the
    model reads: each changes the output, and the run after that replays the new one."""
    repo = make_project(tmp_path)
    rflint(".", cwd=repo)
    before = rflint(".", cwd=repo).stdout

    def replays(*args, env=None) -> str:
        rflint(".", *args, cwd=repo, env=env)  # fills the cache where these options need other entries
        recorded, replayed, modules = warm_pair(repo, *args, env=env)
        assert replayed.stdout == recorded.stdout and modules & HEAVY == set()
        return replayed.stdout

    assert replays() == before
    assert replays("--format", "json").startswith("{")
    assert replays("--statistics").splitlines()[0].endswith("RF001\tunproductive-layer")

    config = (repo / "pyproject.toml").read_text()
    (repo / "pyproject.toml").write_text(config + 'ignore = ["RF002"]\n')
    assert "RF002" not in rflint(".", cwd=repo).stdout and "RF002" in before
    (repo / "pyproject.toml").write_text(config)

    net = repo / "models" / "net.py"
    net.write_text(NET.replace("def net() -> nn.Sequential:", "def net() -> nn.Sequential:  # rflint: noqa"))
    assert rflint(".", cwd=repo).returncode == 0
    net.write_text(NET)
    assert "RF003 [net]" in rflint(".", cwd=repo).stdout

    (repo / "models" / "small.py").write_text(SMALL)
    assert "2 models analyzed" in rflint(".", cwd=repo).stdout
    assert "2 models analyzed" in replays()

    assert "All checks passed!" in rflint(".", cwd=repo, env={"NET_STRIDE": "0"}).stdout  # stride 1: net is fine
    assert "All checks passed!" in replays(env={"NET_STRIDE": "0"})
    assert "RF003 [net]" in replays()


def test_a_temporary_left_by_a_killed_fix_is_removed_by_a_real_run(tmp_path):
    repo = make_project(tmp_path)
    rflint(".", cwd=repo)
    rflint(".", cwd=repo)  # recorded
    leftover = repo / "models" / ".net.py.abcd1234.rflint"
    leftover.write_text("half a file")
    run = rflint(".", "--verbose", cwd=repo)
    assert not leftover.exists() and "removed models/.net.py.abcd1234.rflint, left by an interrupted --fix" in run.stderr


def test_fix_diff_and_output_file_are_never_replayed(tmp_path):
    repo = make_project(tmp_path)
    rflint(".", cwd=repo)
    for args in (["--diff"], ["-o", "report.txt"]):
        rflint(".", *args, cwd=repo)
        run, modules = imports(".", *args, cwd=repo)
        assert "rflint.core.lint" in modules, args
    assert (repo / "report.txt").read_text().count("RF003") == 1


def test_a_variable_the_model_file_sets_itself_is_not_an_input(tmp_path):
    """As rflint sets KERAS_BACKEND before importing keras: recorded as read, the variable
    never matched the parent's environment, and such files were analyzed on every run."""
    (tmp_path / "net.py").write_text('import os\n\nos.environ["NET_MODE"] = "fast"\nassert os.environ["NET_MODE"]\n' + NET)
    assert rflint("net.py", "--input-res", "32", cwd=tmp_path).returncode == 1
    warm = rflint("net.py", "--input-res", "32", "--verbose", cwd=tmp_path)
    assert "net.py: from the cache (1 model)" in warm.stderr
