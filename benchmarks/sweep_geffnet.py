"""geffnet: every factory its modules export (``__all__``), none of its activations.

    PYTHONPATH=.:tests/shims:benchmarks python benchmarks/sweep_geffnet.py
"""

import inspect
import os
import sys

import torchvision_ops  # noqa: F401  (this machine's torchvision needs the test shim)
import geffnet
from geffnet import gen_efficientnet, mobilenetv3

from discovery_sweep import main, python_files

EXPECTED = [name for module in (gen_efficientnet, mobilenetv3) for name in module.__all__
            if inspect.isfunction(getattr(module, name))]

if __name__ == "__main__":
    sys.exit(main("geffnet", python_files(os.path.dirname(geffnet.__file__)), EXPECTED))
