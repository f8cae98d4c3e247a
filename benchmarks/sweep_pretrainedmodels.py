"""pretrainedmodels (Cadene): every name of ``pretrainedmodels.model_names``, at 224 and
with ``--auto`` (each model's ``pretrained_settings`` size).

    PYTHONPATH=.:tests/shims:benchmarks python benchmarks/sweep_pretrainedmodels.py [--auto --out ...]
"""

import os
import sys

import torchvision_ops  # noqa: F401  (this machine's torchvision needs the test shim)
import pretrainedmodels

from discovery_sweep import main, python_files

if __name__ == "__main__":
    folder = os.path.join(os.path.dirname(pretrainedmodels.__file__), "models")
    sys.exit(main("pretrainedmodels", python_files(folder), list(pretrainedmodels.model_names)))
