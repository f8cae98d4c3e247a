"""timm's ``models/`` folder: every name of ``timm.list_models()`` whose factory is defined
in a linted file (its top-level modules; ``_``-prefixed helpers and ``layers/`` hold none).

    PYTHONPATH=.:tests/shims:benchmarks python benchmarks/sweep_timm.py [--auto] [--discover-only] [--only FILE.py ...]
"""

import inspect
import os
import sys

import torchvision_ops  # noqa: F401  (this machine's torchvision needs the test shim)
import timm
from timm.models import _registry

from discovery_sweep import main

if __name__ == "__main__":
    only = sys.argv[sys.argv.index("--only") + 1:] if "--only" in sys.argv else []
    argv = sys.argv[1:sys.argv.index("--only")] if only else sys.argv[1:]
    folder = os.path.dirname(timm.models.__file__)
    files = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                   if name.endswith(".py") and not name.startswith("_") and (not only or name in only))
    linted = {os.path.realpath(f) for f in files}
    expected = [name for name in timm.list_models()
                if os.path.realpath(inspect.getsourcefile(_registry._model_entrypoints[name])) in linted]
    sys.exit(main("timm", files, expected, argv))
