"""Analyze every timm model that has a Conv2d at its own declared input size.

Each model runs in a process forked from this one (torch and timm are imported once), two
at a time, under a per-model time limit, so a hang or a crash costs one row, not the
sweep. Writes a CSV (model, capture, i_res, i_min, i_max, layers, unknown_ops, seconds, error;
``unknown_ops`` lists the ops of unknown spatial meaning on a bounded path as ``op:count``) and
prints the success rate over models with at least one Conv2d and the top failure reasons.

    PYTHONPATH=tests/shims python benchmarks/timm_sweep.py --out sweep.csv
    PYTHONPATH=tests/shims python benchmarks/timm_sweep.py --sample 40 --seed 0
"""

from __future__ import annotations

import argparse
import collections
import csv
import multiprocessing
import random
import re
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields
from multiprocessing.connection import wait

import timm
from torch import nn

from rflint.frontends.torch import capture_eager as capture_fallback  # noqa: F401  (rflint loads it on first use; every child should not)
from rflint.frontends.torch.analysis import analyze


@dataclass
class Row:
    model: str
    has_conv: bool | None = None  # None: the model could not even be built
    capture: str = ""
    i_res: str = ""
    i_min: str = ""
    i_max: str = ""
    layers: int = 0
    unknown_ops: str = ""
    seconds: float = 0.0
    error: str = ""

    @property
    def counted(self) -> bool:
        """Models without a conv are out of scope; unbuildable ones count as failures."""
        return self.has_conv is not False

    @property
    def ok(self) -> bool:
        return not self.error


# Analyzed, but no number to trust: some op rflint reads as global (a reshape that splits
# or merges the spatial axes, as patchifying by reshape does) comes before every layer.
UNBOUNDED = "Unbounded: no layer has a bounded receptive field"


def _axes(values) -> str:
    return "x".join(str(v) for v in values)


def declared_input_res(name: str) -> tuple[int, int]:
    return tuple(timm.models.get_pretrained_cfg(name).input_size[1:])


def analyze_model(name: str) -> Row:
    """Build and analyze one model; remember the built model to tell whether it has a conv."""
    built = []

    def factory():
        built.append(timm.create_model(name, pretrained=False))
        return built[-1]

    row = Row(name)
    start = time.perf_counter()
    try:
        res = declared_input_res(name)
        row.i_res = _axes(res)
        result = analyze(factory, input_res=res, name=name)
        row.capture, row.i_min, row.i_max = result.capture, _axes(result.i_min), _axes(result.i_max)
        row.layers = len(result.layers)
        row.unknown_ops = " ".join(f"{op}:{count}" for op, count in sorted(result.unknown_ops.items()))
        if not any(result.i_min):
            row.error = UNBOUNDED
    except Exception as error:
        row.error = f"{type(error).__name__}: {one_line(error)}"
    row.seconds = round(time.perf_counter() - start, 3)
    if built:
        row.has_conv = any(isinstance(m, nn.Conv2d) for m in built[-1].modules())
    return row


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


def _child(name: str, connection) -> None:
    warnings.simplefilter("ignore")
    connection.send(analyze_model(name))
    connection.close()


def sweep(names: list[str], processes: int, timeout: float, on_row) -> list[Row]:
    """Analyze ``names`` in forked children, ``processes`` at a time; kill any that overrun."""
    context = multiprocessing.get_context("fork")
    pending = list(names)
    running = {}  # connection -> (process, name, started)
    rows = []

    def finish(row: Row) -> None:
        rows.append(row)
        on_row(row, len(rows), len(names))

    while pending or running:
        while pending and len(running) < processes:
            name = pending.pop(0)
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(name, sender), daemon=True)
            process.start()
            sender.close()
            running[receiver] = (process, name, time.monotonic())
        for connection in wait(list(running), timeout=0.5):
            process, name, started = running.pop(connection)
            try:
                row = connection.recv()
            except EOFError:
                row = None
            process.join()
            finish(row or Row(name, seconds=round(time.monotonic() - started, 3),
                              error=f"ProcessDied: exit code {process.exitcode}"))
        for connection, (process, name, started) in list(running.items()):
            if time.monotonic() - started > timeout:
                process.kill()
                process.join()
                del running[connection]
                finish(Row(name, seconds=round(time.monotonic() - started, 3), error=f"Timeout: over {timeout:g} s"))
    order = {name: i for i, name in enumerate(names)}
    return sorted(rows, key=lambda r: order[r.model])


def failure_reason(error: str) -> str:
    """An error message with its model-specific numbers and names blanked, for grouping."""
    reason = re.sub(r"\d+", "N", error)
    return re.sub(r"'[^']*'", "'…'", reason)[:160]


def summarize(rows: list[Row], wall: float, top: int = 10) -> str:
    counted = [r for r in rows if r.counted]
    ok = [r for r in counted if r.ok]
    captures = collections.Counter(r.capture for r in ok)
    unknown = [r for r in ok if r.unknown_ops]
    reasons = collections.Counter(failure_reason(r.error) for r in counted if not r.ok)
    seconds = sorted(r.seconds for r in counted)
    lines = [
        f"{len(ok)}/{len(counted)} models with a Conv2d analyzed ({100 * len(ok) / max(len(counted), 1):.1f}%); "
        f"{len(rows) - len(counted)} without a Conv2d skipped",
        "captures: " + ", ".join(f"{k} {v}" for k, v in captures.most_common()),
        f"{len(unknown)} analysed models with an unknown op on a bounded path"
        + "".join(f"\n  {r.model}: {r.unknown_ops}" for r in unknown),
    ]
    if seconds:
        lines.append(f"seconds per model: median {seconds[len(seconds) // 2]:.2f}, max {seconds[-1]:.1f}, "
                     f"total {sum(seconds):.0f}; wall {wall:.0f} s")
    if reasons:
        lines.append("top failure reasons:")
        lines += [f"  {count:4d}  {reason}" for reason, count in reasons.most_common(top)]
    return "\n".join(lines)


def select(names: list[str], sample: int | None, seed: int, limit: int | None) -> list[str]:
    if sample:
        names = sorted(random.Random(seed).sample(names, sample))
    return names[:limit] if limit else names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="timm_sweep.csv", help="CSV file to write")
    parser.add_argument("--sample", type=int, help="analyze this many models drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample")
    parser.add_argument("--limit", type=int, help="analyze only the first N (after --sample)")
    parser.add_argument("--models", nargs="*", help="analyze these models only")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per model")
    args = parser.parse_args(argv)

    names = args.models or select(timm.list_models(), args.sample, args.seed, args.limit)

    def progress(row: Row, done: int, total: int) -> None:
        status = "ok" if row.ok else row.error[:100]
        print(f"[{done}/{total}] {row.model} {row.capture} {row.i_min} {row.seconds:.1f}s {status}",
              file=sys.stderr, flush=True)

    start = time.monotonic()
    rows = sweep(names, args.processes, args.timeout, progress)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, [field.name for field in fields(Row)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    print(summarize(rows, time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
