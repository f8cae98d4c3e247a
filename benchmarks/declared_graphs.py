"""Declared graphs per second on one core: the speed a NAS loop sees.

ResNet-like graphs (a stem, then basic blocks of two 3x3 convs with a residual add, a
1x1 stride-2 projection where a stage downsamples, a global pool and a dense head) of
about 50, 100 and 200 layers. Two loops per size, each a median of 5 runs:

- ``analyze``: one graph, a stride changed before each call (as a search does), re-analysed;
- ``declare + analyze``: the graph declared from scratch, then analysed.

Run: ``python benchmarks/declared_graphs.py`` (no torch needed; a few seconds).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rflint import Graph  # noqa: E402


def resnet_like(blocks_per_stage: tuple[int, ...]) -> Graph:
    g = Graph(f"resnet_like_{sum(blocks_per_stage)}")
    x = g.input("image")
    x = g.conv(x, 7, stride=2, name="conv1")
    x = g.pool(x, 3, stride=2, name="maxpool")
    for stage, blocks in enumerate(blocks_per_stage, start=1):
        for block in range(blocks):
            name = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            y = g.conv(x, 3, stride=stride, name=f"{name}.conv1")
            y = g.conv(y, 3, name=f"{name}.conv2")
            skip = g.conv(x, 1, stride=2, name=f"{name}.downsample") if stride == 2 else x
            x = g.add(y, skip, name=f"{name}.add")
    x = g.global_pool(x, name="avgpool")
    g.linear(x, name="fc")
    return g


SIZES = {50: (6, 6, 6, 5), 100: (12, 12, 12, 12), 200: (25, 25, 24, 24)}  # layers: 2 + 2 x blocks + 3


def per_second(loop, seconds: float = 1.0) -> float:
    """Calls per CPU second of ``loop`` over about ``seconds`` (after one warm-up call).

    CPU time of this process, pinned to one core: on a shared machine, wall time would
    also count the time other processes held the core."""
    loop(0)
    count, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        loop(count)
        count += 1
    return count / (time.process_time() - start)


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    print(f"Python {platform.python_version()}, {platform.processor() or platform.machine()}, one core")
    print("| layers (nodes) | I_min at 224 | analyze (stride changed each call) | declare + analyze |")
    print("|---|---|---|---|")
    for size, blocks in SIZES.items():
        graph = resnet_like(blocks)
        layers = len(graph.analyze(224).layers)
        searched = graph["layer2.0.conv1"]

        def analyze_changed(i: int) -> None:
            searched.stride = 1 + i % 2
            graph.analyze(224)

        def declare_and_analyze(_: int) -> None:
            resnet_like(blocks).analyze(224)

        runs = [(per_second(analyze_changed), per_second(declare_and_analyze)) for _ in range(5)]
        searched.stride = 2
        analyze_rate = statistics.median(r[0] for r in runs)
        full_rate = statistics.median(r[1] for r in runs)
        print(f"| {layers} ({len(graph)}) | {graph.analyze(224).i_min[0]} | {analyze_rate:,.0f} graphs/s "
              f"({1e3 / analyze_rate:.2f} ms) | {full_rate:,.0f} graphs/s ({1e3 / full_rate:.2f} ms) |")
    print(f"'torch' imported: {'torch' in sys.modules}")


if __name__ == "__main__":
    main()
