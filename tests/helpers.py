"""Run the rflint command the way a user does: in a subprocess, from a given folder."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parent.parent


def rflint(*args, cwd=REPO, timeout=600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rflint", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
