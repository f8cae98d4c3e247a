"""What the runner's isolation costs: cold ``rflint <torchvision>/models``, this checkout
against a baseline commit, alternating in one run.

    PYTHONPATH=tests/shims python benchmarks/isolation.py --baseline 2cb7bd7 --runs 3

2cb7bd7 is the runner before issue 15: one worker process per package, whose files shared
it. This checkout forks a fresh process per file from a package worker that imported the
package once, and each package worker moves into its own user and network namespace,
redirects its output and records what it reads. Runs alternate between the two so that
both see the same load (wall times swing 25-50 % on a shared 2-core machine); CPU time
(user + system over the whole process tree, from ``/usr/bin/time -v``) is the steadier
figure. The two runs' reports must be identical, or the comparison means nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import REPO, measure, torchvision_models  # noqa: E402


def run_with(tree: Path, models: Path):
    """One cold run of the rflint in ``tree`` (run from there: ``-m`` puts it first on sys.path)."""
    previous = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), previous]))
    try:
        return measure([sys.executable, "-m", "rflint", str(models), "--input-res", "224", "--no-cache"], cwd=tree)
    finally:
        os.environ["PYTHONPATH"] = previous


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git commit of the runner to compare with")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    models = torchvision_models()
    with tempfile.TemporaryDirectory(prefix="rflint-baseline-") as scratch:
        baseline = Path(scratch) / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.baseline],
                       check=True, capture_output=True)
        try:
            samples = {"baseline": [], "this checkout": []}
            for index in range(args.runs):
                for label, tree in (("baseline", baseline), ("this checkout", REPO)):
                    sample = run_with(tree, models)
                    samples[label].append(sample)
                    print(f"run {index + 1} {label}: wall {sample.wall:.1f} s, CPU {sample.user + sample.sys:.1f} s "
                          f"(load {sample.load:.1f}), exit {sample.returncode}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)], check=True)
    outputs = {label: {s.stdout for s in runs} for label, runs in samples.items()}
    if any(len(texts) != 1 for texts in outputs.values()) or outputs["baseline"] != outputs["this checkout"]:
        print("the reports differ between runs or between the two runners", file=sys.stderr)
        return 1
    medians = {label: (statistics.median(s.wall for s in runs), statistics.median(s.user + s.sys for s in runs))
               for label, runs in samples.items()}
    for label, (wall, cpu) in medians.items():
        print(f"{label}: median wall {wall:.1f} s, median CPU {cpu:.1f} s")
    (old_wall, old_cpu), (new_wall, new_cpu) = medians["baseline"], medians["this checkout"]
    print(f"isolation cost: CPU x{new_cpu / old_cpu:.2f}, wall x{new_wall / old_wall:.2f} "
          f"({args.runs} alternating runs each, {len(next(iter(outputs['baseline'])).splitlines())} report lines identical)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
