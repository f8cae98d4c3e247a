"""pretrainedmodels (Cadene): every name of ``pretrainedmodels.model_names``, at 224 and
with ``--input-res auto`` (each model's ``pretrained_settings`` size).

    PYTHONPATH=.:tests/shims python benchmarks/sweep_pretrainedmodels.py [--auto]
"""

import os
import sys

import torchvision_ops  # noqa: F401  (this machine's torchvision needs the test shim)
import pretrainedmodels

from discovery_sweep import main, python_files

if __name__ == "__main__":
    auto = "--auto" in sys.argv
    argv = [a for a in sys.argv[1:] if a != "--auto"]
    if auto and not any(a.startswith("--out") for a in argv):
        argv += ["--out", "benchmarks/pretrainedmodels_auto_sweep.csv"]
    folder = os.path.join(os.path.dirname(pretrainedmodels.__file__), "models")
    sys.exit(main("pretrainedmodels" + (" (--input-res auto)" if auto else ""), python_files(folder),
                  list(pretrainedmodels.model_names), argv, input_res_auto=auto))
