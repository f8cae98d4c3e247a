"""The hooks in ``.pre-commit-hooks.yaml``, run by pre-commit itself in throwaway git repos.

By default (offline, about 20 s, most of it torch imports):

- the shipped manifest validates against pre-commit's own schema, and each ``entry`` is the
  console script with options the rflint CLI accepts;
- ``pre-commit try-repo HOOKS rflint --all-files`` for real. HOOKS holds the shipped
  manifest with one change, ``language: system`` instead of ``python`` (the documented
  variant for repos that already have torch), so ``entry`` runs the ``rflint`` installed
  next to this interpreter, i.e. this checkout. The check hook fails with the RF003 line,
  ``rflint-fix`` rewrites stride literals and nothing else, then the check hook passes. The same runs
  show that ``types: [python]``, ``--force-exclude`` and ``require_serial`` take effect;
- ``args`` from a user's config reach rflint.

Opt-in (``-m slow``): the shipped ``language: python`` hook, which pre-commit installs into
its own virtualenv with pip. Unpinned, ``torch>=2.1`` resolves to the newest CUDA build on
PyPI plus several GB of nvidia-* wheels, so the test pins torch (the documented
``additional_dependencies`` recipe) to the exact version already installed. That version
must carry a local label such as ``+cpu``, which PyPI never serves, so a machine without a
local CPU wheel fails fast instead of downloading. libcst and a few small wheels still come
from pip's configured index. The install takes 35 s to 2 min on the development machine.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from helpers import REPO

MANIFEST = REPO / ".pre-commit-hooks.yaml"

NET = """\
from torch import nn


def net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1),
        nn.ReLU(),
    )
"""  # I_min = 63: fully utilized at rflint's default 224, not at 48 (stride 1 in the 4th conv gives 47)
TINY = """\
from torch import nn


def tiny() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
"""
SCRIPT = '"""A script without models."""\n\n\ndef main() -> int:\n    return 0\n'

RF003_LINE = re.compile(r"^models/net\.py:4:1: RF003 \[net\] .*I_res=48\b", re.MULTILINE)
STATUS_LINE = re.compile(r"^(?P<name>.+?)\.{3,}(?:\(no files to check\))?(?P<status>Passed|Failed|Skipped)$")


def _env(tmp_path: Path) -> dict[str, str]:
    """Isolated from the caller's git and pre-commit settings, and from the test shims."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GIT_", "PRE_COMMIT", "PIP_CONSTRAINT")) and key not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n")
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(gitconfig),
        GIT_AUTHOR_NAME="rflint tests",
        GIT_AUTHOR_EMAIL="tests@rflint.invalid",
        GIT_COMMITTER_NAME="rflint tests",
        GIT_COMMITTER_EMAIL="tests@rflint.invalid",
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),  # `run` only: try-repo uses a temporary store
        PRE_COMMIT_COLOR="never",
        # The rflint that a `language: system` hook finds first: the one next to this interpreter.
        PATH=os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")]),
    )
    return env


def _git(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _commit_all(repo: Path, env: dict[str, str]) -> str:
    _git("init", "-q", cwd=repo, env=env)
    _git("add", "-A", cwd=repo, env=env)
    _git("commit", "-q", "-m", "snapshot", cwd=repo, env=env)
    return _git("rev-parse", "HEAD", cwd=repo, env=env)


def _pre_commit(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _system_hook_repo(path: Path, env: dict[str, str]) -> tuple[Path, str]:
    """A git repo whose manifest is the shipped one, run with ``language: system``."""
    hooks = yaml.safe_load(MANIFEST.read_text())
    for hook in hooks:
        hook["language"] = "system"
        hook.pop("additional_dependencies", None)  # `system` refuses them
    path.mkdir()
    (path / ".pre-commit-hooks.yaml").write_text(yaml.safe_dump(hooks, sort_keys=False))
    return path, _commit_all(path, env)


def _checkout_snapshot(path: Path, env: dict[str, str]) -> tuple[Path, str]:
    """This checkout's files as they are on disk, committed or not, committed to a new repo.

    ``try-repo`` on the checkout itself would take HEAD plus the changes to tracked files
    only, so an uncommitted manifest or module would be missing.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():  # a tracked file deleted from the working tree is left out
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, path / name)
    return path, _commit_all(path, env)


def _user_repo(path: Path, env: dict[str, str], *, input_res_in_config: bool = True) -> Path:
    """Six Python files, one model to flag and one excluded by config, and a non-Python copy of it."""
    files = {
        "models/__init__.py": "",
        "models/net.py": NET,
        "models/tiny.py": TINY,
        "scripts/train.py": SCRIPT,
        "scripts/export.py": SCRIPT,
        "legacy/old_net.py": NET,  # excluded below; pre-commit still names it
        "notes/net_v0.py.txt": NET,  # not `types: [python]`; rflint lints any file it is given
        "pyproject.toml": '[tool.rflint]\nextend-exclude = ["legacy"]\n'
        + ("input-res = 48\n" if input_res_in_config else ""),
    }
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    _git("init", "-q", cwd=path, env=env)
    _git("add", "-A", cwd=path, env=env)  # staged is enough for --all-files
    return path


def _hook_section(stdout: str, name: str) -> list[str]:
    """Hook ``name``'s status line and the lines it printed, up to the next status line."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if (m := STATUS_LINE.match(line)) and m["name"] == name]
    assert len(starts) == 1, f"expected one status line for hook {name!r}:\n{stdout}"
    end = next((i for i in range(starts[0] + 1, len(lines)) if STATUS_LINE.match(lines[i])), len(lines))
    return lines[starts[0]:end]


def _assert_check_fails(done: subprocess.CompletedProcess) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    section = _hook_section(done.stdout, "rflint")
    text = "\n".join(section)
    assert section[0].endswith("Failed") and "- exit code: 1" in section, output
    assert RF003_LINE.search(text), output
    assert "legacy/" not in text, "--force-exclude missing: an excluded file was linted\n" + output
    assert "net_v0" not in text, "`types: [python]` missing: a .txt file was passed\n" + output
    summaries = [line for line in section if re.fullmatch(r"Found \d+ errors?\.|All checks passed!", line)]
    # Six files, at least two CPUs: pre-commit splits them over two processes unless require_serial.
    assert len(summaries) == 1, "rflint ran more than once: require_serial missing?\n" + output


def _assert_fix_hook_rewrote_strides(done: subprocess.CompletedProcess, before: str, after: str) -> None:
    """The fix hook failed because it changed files, and it changed nothing but stride literals.

    Which literal is the fixer's choice (tests/test_fixes.py); one is enough here.
    """
    output = done.stdout + done.stderr
    section = _hook_section(done.stdout, "rflint (apply fixes)")
    assert section[0].endswith("Failed") and "- files were modified by this hook" in section, output
    diff = "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm=""))
    changed = [(old, new) for old, new in zip(before.splitlines(), after.splitlines()) if old != new]
    assert len(before.splitlines()) == len(after.splitlines()) and changed, diff or output
    assert all("stride=2" in old and new == old.replace("stride=2", "stride=1") for old, new in changed), diff


def test_manifest_is_valid_and_matches_the_cli():
    from pre_commit.clientlib import load_manifest

    from rflint.cli import parser

    hooks = {hook["id"]: hook for hook in load_manifest(str(MANIFEST))}  # pre-commit's own schema
    assert list(hooks) == ["rflint", "rflint-fix"]
    for hook in hooks.values():
        command, *options = hook["entry"].split()
        assert command == "rflint"  # the [project.scripts] console script
        assert "--force-exclude" in options  # pre-commit names every file explicitly
        assert hook["language"] == "python"
        assert hook["types"] == ["python"] and hook["pass_filenames"] is True
        assert hook["require_serial"] is True  # one torch import per run
        assert hook["args"] == [] and hook["additional_dependencies"] == []
        parser().parse_args([*options, "--input-res", "48", "models/net.py"])  # exits 2 on an unknown option
    assert "--fix" not in hooks["rflint"]["entry"].split()
    assert "--fix" in hooks["rflint-fix"]["entry"].split()


def test_try_repo_check_fails_then_fix_then_passes(tmp_path):
    scripts = sysconfig.get_path("scripts")
    assert shutil.which("rflint", path=scripts), f"no rflint console script in {scripts}: pip install -e ."
    env = _env(tmp_path)
    hooks, _rev = _system_hook_repo(tmp_path / "hooks", env)
    user = _user_repo(tmp_path / "user", env)
    untouched = {name: (user / name).read_text() for name in ("legacy/old_net.py", "notes/net_v0.py.txt")}

    _assert_check_fails(_pre_commit("try-repo", str(hooks), "rflint", "--all-files", cwd=user, env=env))

    before = (user / "models/net.py").read_text()
    fixed = _pre_commit("try-repo", str(hooks), "rflint-fix", "--all-files", cwd=user, env=env)
    assert fixed.returncode == 1, fixed.stdout + fixed.stderr
    _assert_fix_hook_rewrote_strides(fixed, before, (user / "models/net.py").read_text())
    assert {name: (user / name).read_text() for name in untouched} == untouched

    passed = _pre_commit("try-repo", str(hooks), "rflint", "--all-files", cwd=user, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert _hook_section(passed.stdout, "rflint")[0].endswith("Passed"), passed.stdout


def test_args_reach_rflint(tmp_path):
    env = _env(tmp_path)
    hooks, rev = _system_hook_repo(tmp_path / "hooks", env)
    user = _user_repo(tmp_path / "user", env, input_res_in_config=False)  # NET passes at the default 224
    config = tmp_path / "pre-commit-config.yaml"
    hook = {"id": "rflint", "args": ["--input-res", "48"]}
    config.write_text(yaml.safe_dump({"repos": [{"repo": str(hooks), "rev": rev, "hooks": [hook]}]}))

    _assert_check_fails(_pre_commit("run", "--config", str(config), "--all-files", cwd=user, env=env))


@pytest.mark.slow
def test_language_python_hook_installs_and_runs(tmp_path):
    """The shipped hook as users get it, with the documented torch pin.

    ``pre-commit run`` with a config naming the hook repo rather than ``try-repo``: try-repo
    installs into a new temporary store on every call, so three calls would build the
    environment (about 900 MB) three times.
    """
    import torch

    if "+" not in torch.__version__:
        pytest.skip(f"torch {torch.__version__} has no local label: pinning it could fetch a CUDA build")
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    env = _env(tmp_path)
    store = Path(env["PRE_COMMIT_HOME"])
    (tmp_path / "hooks").mkdir()
    hooks, rev = _checkout_snapshot(tmp_path / "hooks", env)
    user = _user_repo(tmp_path / "user", env)
    pin = [f"torch=={torch.__version__}"]
    config = tmp_path / "pre-commit-config.yaml"
    config.write_text(yaml.safe_dump({"repos": [{"repo": str(hooks), "rev": rev, "hooks": [
        {"id": "rflint", "additional_dependencies": pin},
        {"id": "rflint-fix", "additional_dependencies": pin},  # same deps: the same environment
    ]}]}))

    def run(hook_id: str) -> subprocess.CompletedProcess:
        return _pre_commit("run", "--config", str(config), hook_id, "--all-files", cwd=user, env=env, timeout=1800)

    try:
        first = run("rflint")
        assert "Installing environment" in first.stdout + first.stderr, first.stdout + first.stderr
        _assert_check_fails(first)
        envs = list(store.glob("repo*/py_env-*"))
        assert len(envs) == 1 and list(envs[0].glob("lib/python*/site-packages/rflint/__init__.py")), envs

        before = (user / "models/net.py").read_text()
        fixed = run("rflint-fix")
        assert fixed.returncode == 1 and "Installing environment" not in fixed.stdout + fixed.stderr, fixed.stdout
        _assert_fix_hook_rewrote_strides(fixed, before, (user / "models/net.py").read_text())

        passed = run("rflint")
        assert passed.returncode == 0 and _hook_section(passed.stdout, "rflint")[0].endswith("Passed"), passed.stdout
    finally:  # not left behind in the temp dirs pytest keeps
        shutil.rmtree(store, ignore_errors=True)
