"""Golden outputs for the fixtures: the exact diagnostics (code, file, line, column).

Regenerate after an intended change with ``RFLINT_UPDATE_GOLDEN=1 pytest tests/test_golden.py``.
"""

import os

import pytest

from helpers import REPO, rflint

CASES = {
    "fixtures-64": (["fixtures/lint", "--input-res", "64", "--no-cache"], 1),
    "functional-24": (["fixtures/lint/functional_pool.py", "--input-res", "24", "--no-cache"], 1),
    "clean-64": (["fixtures/lint/clean.py", "--input-res", "64", "--no-cache"], 0),
    "fixtures-64-json": (["fixtures/lint", "--input-res", "64", "--format", "json", "--no-cache"], 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    args, status = CASES[name]
    run = rflint(*args)
    golden = REPO / "tests" / "golden" / f"{name}.txt"
    if os.environ.get("RFLINT_UPDATE_GOLDEN"):
        golden.write_text(run.stdout)
    assert run.stderr == ""
    assert run.returncode == status
    assert run.stdout == golden.read_text()
