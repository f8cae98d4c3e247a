"""Shared test setup: torchvision importable in this process and in every subprocess."""

import os
import sys
from pathlib import Path

SHIMS = Path(__file__).parent / "shims"
REPO = Path(__file__).parent.parent

os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIMS), os.environ.get("PYTHONPATH")]))
if str(SHIMS) not in sys.path:
    sys.path.insert(0, str(SHIMS))
import torchvision_ops  # noqa: E402,F401
