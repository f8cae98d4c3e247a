"""The lint command's options, shared by ``rflint`` and the language server (which lints
a file as ``rflint FILE`` would)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from rflint.about import __version__

FORMATS = ("concise", "full", "json", "sarif", "github")


def _cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rflint",
        description="Find CNN layers whose receptive field already covers the input image, "
        "and rewrite the stride or patch-size literal that fixes it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", default=None, help="files or folders to lint (default: .)")
    p.add_argument("--input-res", metavar="N|HxW|DxHxW|auto", help="input resolution the model is trained on (default 224)")
    p.add_argument("--select", metavar="CODES", help="comma-separated rule codes or prefixes to enable")
    p.add_argument("--ignore", metavar="CODES", help="comma-separated rule codes or prefixes to disable")
    p.add_argument("--format", "--output-format", dest="format", choices=FORMATS, help="output format (default concise)")
    p.add_argument("-o", "--output-file", help="write the report to this file instead of stdout")
    p.add_argument("--config", help="path to a pyproject.toml or rflint.toml to use")
    p.add_argument("--isolated", action="store_true", help="ignore all configuration files")
    p.add_argument("--fix", action="store_true", help="apply safe fixes")
    p.add_argument("--unsafe-fixes", action="store_true", help="with --fix, also apply unsafe fixes (patch-size changes)")
    p.add_argument("--diff", action="store_true", help="print the fixes as a unified diff; write nothing")
    p.add_argument("--max-flops-ratio", type=float, metavar="X",
                   help="a fix may multiply a model's FLOPs by at most X; costlier changes are advice (default 5)")
    p.add_argument("--show-fixes", action="store_true", help="list applied or proposed fixes with before/after I_min, FLOPs, params")
    p.add_argument("--exit-non-zero-on-fix", action="store_true", help="exit 1 when a file was changed")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when diagnostics are reported")
    p.add_argument("--statistics", action="store_true", help="print the number of diagnostics per rule")
    p.add_argument("--explain", metavar="CODE", help="print the documentation of a rule and exit")
    p.add_argument("--force-exclude", action="store_true", help="apply exclude to files named on the command line")
    p.add_argument("--jobs", type=int, default=_cores(), help="worker processes (default: number of cores)")
    p.add_argument("--timeout", type=float, help="time limit per file in seconds, fix rebuilds included (default 60)")
    p.add_argument("--max-memory", metavar="SIZE", help="memory limit per worker, e.g. 4G (default: half the machine's memory)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--cache-dir", help="cache folder (default .rflint_cache)")
    p.add_argument("--clean", action="store_true", help="delete the cache folder and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="print diagnostics only, no summary")
    p.add_argument("-v", "--verbose", action="store_true", help="also print skipped candidates and the resolution used")
    p.add_argument("--version", action="version", version=f"rflint {__version__}")
    return p


@dataclass
class Job:
    """What every worker needs to know, made from the options; inherited by fork, never
    re-parsed. Defined here, not in the runner, so that a warm run (every file from the
    cache) keys its cache on it without importing the process machinery."""

    analyzed: frozenset[str]
    input_res: tuple[int, ...]
    input_res_auto: bool = False
    timeout: float = 60.0
    search_fixes: bool = False
    max_flops_ratio: float = 5.0  # a fix may multiply a model's FLOPs by at most this (fix.DEFAULT_MAX_FLOPS_RATIO)
    explicit: dict[str, list] = field(default_factory=dict)  # file -> configured model entries
    max_memory: int | None = None  # bytes per worker beyond what it was forked with

    def resolution_for(self, entry) -> tuple[tuple[int, ...] | int, str]:
        if entry.input_res:
            return entry.input_res, "config"
        if self.input_res_auto:
            from rflint.frontends.discover import declared_resolution

            declared = declared_resolution(entry)
            if declared:
                return declared, "model"
        return self.input_res, "option"
