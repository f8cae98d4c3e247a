"""Cold lint of a large real package, pytorchcv's ``models/`` (161 files, ~1,400 candidates):
wall and CPU time of the whole process tree, peak memory of the largest process, load average.

    PYTHONPATH=. python benchmarks/pytorchcv_sweep.py [--format json] [--jobs N]

CPU time (user + system over rflint and every worker) is the figure to compare across
runs on a shared machine: wall time swings with the other processes' load.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--format", default="concise")
    parser.add_argument("--jobs", type=int)
    options = parser.parse_args()
    import pytorchcv

    models = Path(pytorchcv.__file__).parent / "models"
    command = [sys.executable, "-m", "rflint", str(models), "--input-res", "224", "--no-cache", "--format", options.format]
    if options.jobs:
        command += ["--jobs", str(options.jobs)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = [line for line in run.stdout.splitlines() if "models analyzed" in line or line.startswith("Found ")]
    timed_out = run.stdout.count("timed out after")
    print(f"pytorchcv models/, --format {options.format}: wall {wall:.1f} s, CPU {usage.ru_utime + usage.ru_stime:.1f} s "
          f"(user {usage.ru_utime:.1f}, system {usage.ru_stime:.1f}), largest process {usage.ru_maxrss / 1024:.0f} MB, "
          f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end; {timed_out} files timed out; "
          f"exit {run.returncode}; {' '.join(summary)}")


if __name__ == "__main__":
    main()
