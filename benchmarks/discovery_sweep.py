"""Lint a public model package as a new user would, and compare what rflint finds with the
models the package says it has. Shared by the per-package sweep scripts.

Each sweep lints the package's files through rflint's runner (worker processes, a time
limit per model, no fix search), then writes one CSV row per model expected or found:
whether it was found, and whether it was analysed, skipped (with the reason) or failed
(with the reason). It prints found vs expected, the reasons grouped, and the seconds.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, fields
from typing import Iterable

from rflint.core.diagnostics import SKIPPED
from rflint.core.lint import models_of_run
from rflint.run.runner import Job, run


@dataclass
class Row:
    name: str
    file: str = ""
    expected: bool = False
    found: bool = False
    status: str = "not found"  # analyzed | error | skipped | block | found (--discover-only) | not found
    reason: str = ""  # why skipped, or the error
    i_min: str = ""


def reason_group(text: str) -> str:
    """A reason with its model-specific numbers and names blanked, for grouping."""
    return re.sub(r"'[^']*'", "'…'", re.sub(r"\d+", "N", text))[:140]


def sweep(files: list[str], expected: Iterable[str], jobs: int, timeout: float, input_res: int = 224,
          input_res_auto: bool = False) -> tuple[list[Row], float]:
    """Lint ``files``; rows for every model found and every expected name, and the seconds taken."""
    files = sorted(os.path.realpath(f) for f in files)
    job = Job(analyzed=frozenset(files), input_res=(input_res, input_res), input_res_auto=input_res_auto,
              timeout=timeout)
    start = time.monotonic()
    reports = run(files, job, jobs)
    seconds = time.monotonic() - start
    expected = set(expected)
    linted = {id(m) for m in models_of_run(reports)}
    rows: dict[str, Row] = {}

    def row_of(name: str, file: str) -> Row:
        name = name if name in expected else f"{os.path.basename(file)}::{name}"
        return rows.setdefault(name, Row(name, os.path.basename(file), found=True))

    for report in reports:
        for model in report.models:
            row = row_of(model.name, report.file)
            row.status = model.status if id(model) in linted or model.status == "skipped" else "block"
            row.reason = model.skip_reason or model.error or ("a building block of another model" if row.status == "block" else "")
            if model.result is not None:
                row.i_min = "x".join(map(str, model.result.i_min))
        for note in report.skipped:  # candidates discovery set aside: "skipped NAME: reason"
            if not note.startswith(SKIPPED):
                continue
            name, _, reason = note.removeprefix(SKIPPED).partition(": ")
            row = row_of(name, report.file)
            row.status, row.reason = "skipped", reason
        for diagnostic in report.diagnostics:  # a file that cannot be imported
            rows.setdefault(os.path.basename(report.file), Row(os.path.basename(report.file), os.path.basename(report.file),
                                                                 status="error", reason=diagnostic.message))
    for name in expected:
        rows.setdefault(name, Row(name)).expected = True
    return sorted(rows.values(), key=lambda r: (not r.expected, r.name)), seconds


def discover_only(files: list[str], expected: Iterable[str]) -> tuple[list[Row], float]:
    """Discovery without building anything (``--discover-only``): the files are imported in
    this process, as installed modules, and their candidates listed."""
    import importlib

    from rflint.frontends.discover import find_models

    expected = set(expected)
    start = time.monotonic()
    rows: dict[str, Row] = {}
    for file in files:
        try:
            module = importlib.import_module(module_name(file))
            with open(file, encoding="utf-8") as handle:
                entries, skipped = find_models(module, module.__file__, handle.read())
        except Exception as error:  # noqa: BLE001  a sweep row, not a crash
            rows[os.path.basename(file)] = Row(os.path.basename(file), os.path.basename(file), status="error",
                                               reason=f"cannot import: {type(error).__name__}: {error}")
            continue
        for entry in entries:
            name = entry.name if entry.name in expected else f"{os.path.basename(file)}::{entry.name}"
            rows[name] = Row(name, os.path.basename(file), found=True, status="found")
        for note in skipped:
            name, _, reason = note.removeprefix(SKIPPED).partition(": ")
            rows[f"{os.path.basename(file)}::{name}"] = Row(name, os.path.basename(file), found=True,
                                                             status="skipped", reason=reason)
    for name in expected:
        rows.setdefault(name, Row(name)).expected = True
    return sorted(rows.values(), key=lambda r: (not r.expected, r.name)), time.monotonic() - start


def module_name(file: str) -> str:
    """The dotted name of an installed module file (``.../site-packages/timm/models/vgg.py`` -> ``timm.models.vgg``)."""
    parts = os.path.splitext(os.path.realpath(file))[0].split(os.sep)
    top = next(i for i in range(len(parts)) if os.path.exists(os.sep.join(parts[:i + 1] + ["__init__.py"])))
    return ".".join(parts[top:]).removesuffix(".__init__")


def summary(package: str, rows: list[Row], seconds: float, top: int = 8) -> str:
    expected = [r for r in rows if r.expected]
    found = [r for r in expected if r.found]
    by_status = collections.Counter(r.status for r in rows if r.found or r.status == "error")
    lines = [
        f"{package}: {len(found)}/{len(expected)} expected models found; of the {sum(r.found for r in rows)} "
        f"candidates: {by_status['analyzed']} analyzed, {by_status['skipped']} skipped, {by_status['error']} errors, "
        f"{by_status['block']} building blocks of another model"
        + (f", {by_status['found']} found (not built: --discover-only)" if by_status["found"] else "") + f"; {seconds:.0f} s",
    ]
    missing = [r.name for r in expected if not r.found]
    if missing:
        lines.append(f"  not found: {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}")
    for status in ("skipped", "error"):
        reasons = collections.Counter(reason_group(r.reason) for r in rows if r.status == status)
        if reasons:
            lines.append(f"  {status}:")
            lines += [f"    {count:4d}  {reason}" for reason, count in reasons.most_common(top)]
    return "\n".join(lines)


def main(package: str, files: list[str], expected: list[str], argv=None) -> int:
    parser = argparse.ArgumentParser(description=f"rflint's discovery sweep over {package}")
    parser.add_argument("--out", default=f"benchmarks/discovery_{package}.csv", help="CSV file to write")
    parser.add_argument("--auto", action="store_true", help="--input-res auto (each model's declared size)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per model")
    parser.add_argument("--discover-only", action="store_true", help="list the models found, build none")
    args = parser.parse_args(argv)
    if args.discover_only:
        rows, seconds = discover_only(files, expected)
    else:
        rows, seconds = sweep(files, expected, args.jobs, args.timeout, input_res_auto=args.auto)
    package += " (--input-res auto)" if args.auto else ""
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, [f.name for f in fields(Row)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    print(summary(package, rows, seconds))
    return 0


def python_files(folder: str) -> list[str]:
    return sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
                  if name.endswith(".py") and "__pycache__" not in root)


if __name__ == "__main__":
    sys.exit("run one of the per-package scripts: sweep_geffnet.py, sweep_pretrainedmodels.py, ...")
