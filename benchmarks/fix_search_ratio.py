"""What the fix search costs on torchvision's ``models/``: ``--format json`` (fix search)
against a lint that searches no fix (``--format github``), cold (``--no-cache``), alternating
in one run so both see the same machine load. Wall and CPU (user + system of the whole
process tree) per run, then the medians' ratios.

    PYTHONPATH=.:tests/shims python benchmarks/fix_search_ratio.py [--runs 3] [--tree PATH]

``--tree`` runs another checkout's rflint (``/work/main`` for the figures before a change).
``--timeout 900``: on a loaded machine a file's search can exceed the default 60 s, and a
file cut short would make the fix search look cheaper than it is.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODES = {"no fix search (github)": ["--format", "github"], "fix search (json)": ["--format", "json"]}


def run(tree: Path, args: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``python -m rflint`` run, its workers included."""
    models = Path(importlib.util.find_spec("torchvision").origin).parent / "models"
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{REPO / 'tests' / 'shims'}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rflint", str(models), "--input-res", "224", "--no-cache", "--timeout", "900", *args],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout whose rflint runs")
    options = parser.parse_args()
    figures: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    for _ in range(options.runs):
        for mode, args in MODES.items():
            figures[mode].append(run(options.tree, args))
            wall, cpu = figures[mode][-1]
            print(f"{mode}: wall {wall:.1f} s, CPU {cpu:.1f} s", flush=True)
    medians = {mode: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
               for mode, runs in figures.items()}
    (plain_wall, plain_cpu), (json_wall, json_cpu) = medians.values()
    print(f"medians of {options.runs}: plain wall {plain_wall:.1f} s CPU {plain_cpu:.1f} s; "
          f"json wall {json_wall:.1f} s CPU {json_cpu:.1f} s; "
          f"ratio wall {json_wall / plain_wall:.2f}x, CPU {json_cpu / plain_cpu:.2f}x")


if __name__ == "__main__":
    main()
