"""The ``rflint`` command: parse options, lint, fix, report, choose the exit status."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

from . import __version__

EXIT_CLEAN, EXIT_FOUND, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FORMATS = ("concise", "full", "json", "sarif", "github")
# name -> (module with ``main(argv) -> int``, the line ``rflint --help`` shows)
COMMANDS = {
    "report MODEL_SPEC [-o FILE]": ("html_report", "write an HTML page of one model's receptive fields and fix"),
    "server": ("server", "a language server (LSP over stdio) for editors"),
}


def _cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rflint",
        usage="rflint [PATHS ...] [options]\n       rflint {report,server} ... (see rflint COMMAND --help)",
        description="Find CNN layers whose receptive field already covers the input image, "
        "and rewrite the stride or patch-size literal that fixes it.",
        epilog="commands:\n" + "\n".join(f"  {name:<30}{summary}" for name, (_, summary) in COMMANDS.items()),
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


def command(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names, if any. A file or folder of that name in the working
    directory is linted as before unless the arguments can only be the command's (a
    MODEL_SPEC, ``--help``); ``./report`` always names the folder."""
    names = {usage.split()[0]: module for usage, (module, _) in COMMANDS.items()}
    if not argv or argv[0] not in names:
        return None
    meant = any(a in ("-h", "--help") or (":" in a and not a.startswith("-")) for a in argv[1:])
    return names[argv[0]] if meant or not os.path.exists(argv[0]) else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    module = command(argv)
    if module is not None:
        import importlib

        return importlib.import_module(f".{module}", __package__).main(argv[1:])
    args = parser().parse_args(argv)
    from .config import ConfigError
    from .files import UsageError

    try:
        return _run(args)
    except KeyboardInterrupt:  # the runner has already killed its workers
        print("rflint: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ConfigError, UsageError, KeyError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        print(f"rflint: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        from .diagnostics import describe_os_error

        print(f"rflint: error: {describe_os_error(error)}", file=sys.stderr)
        return EXIT_USAGE


def _run(args) -> int:
    from .session import Session

    if args.explain:
        from .explain import explain

        sys.stdout.write(explain(args.explain, as_json=args.format == "json"))
        return EXIT_CLEAN
    session = Session.from_args(args, Path.cwd())
    if args.clean:
        session.clean_cache()
        return EXIT_CLEAN
    replayed = session.replay()
    if replayed is not None:
        output, status = replayed
        for fd, data in output:
            stream = sys.stdout if fd == 1 else sys.stderr
            stream.flush()
            stream.buffer.write(data)
        return status
    with _teed_output() as output:
        status = _lint(args, session)
    session.remember(output, status)
    return status


class _Tee(io.RawIOBase):
    """Writes through to a stream's binary buffer and keeps (fd, bytes) of each write."""

    def __init__(self, target, fd: int, kept: list[tuple[int, bytes]]):
        super().__init__()
        self.target, self.fd, self.kept = target, fd, kept

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self.target.write(data)
        self.kept.append((self.fd, data))
        return len(data)

    def flush(self) -> None:
        self.target.flush()


@contextlib.contextmanager
def _teed_output():
    """What the run writes to stdout and stderr, in order, as the next identical run will
    replay it (``Session.replay``); streams without a binary buffer are left alone."""
    kept: list[tuple[int, bytes]] = []
    originals = sys.stdout, sys.stderr
    if not all(hasattr(stream, "buffer") for stream in originals):
        yield kept
        return
    for stream in originals:
        stream.flush()
    sys.stdout, sys.stderr = (
        io.TextIOWrapper(_Tee(stream.buffer, fd, kept), encoding=stream.encoding, errors=stream.errors,
                         line_buffering=stream.line_buffering, write_through=True)
        for fd, stream in ((1, originals[0]), (2, originals[1]))
    )
    try:
        yield kept
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
            stream.detach()  # closing the wrapper must not close the real stream
        sys.stdout, sys.stderr = originals


def _lint(args, session) -> int:
    """Lint (and fix), print the report; the exit status."""
    for info in session.infos:
        print(f"rflint: info: {info}", file=sys.stderr)
    outcome = session.run()
    for warning in session.warnings:
        print(f"rflint: warning: {warning}", file=sys.stderr)
    if args.verbose:
        for note in outcome.notes:
            print(f"rflint: info: {note}", file=sys.stderr)
    text = "" if args.diff else session.render(outcome)
    if args.show_fixes:
        text += session.show_fixes(outcome)
    # A diff is bytes: each file's hunks in that file's encoding, so patch tools apply it.
    data = outcome.diff + text.encode()
    if args.output_file:
        from .cache import write_file_atomically

        try:
            write_file_atomically(Path(args.output_file), data)  # Ctrl-C leaves the old file or the new
        except OSError as error:  # name the output file, not the temporary one
            raise OSError(error.errno, error.strerror, args.output_file) from None
    elif data:
        sys.stdout.flush()
        sys.stdout.buffer.write(data if data.endswith(b"\n") else data + b"\n")
        sys.stdout.buffer.flush()
    if args.exit_zero:
        return EXIT_CLEAN
    if session.failed_writes:
        return EXIT_FOUND
    if args.diff:
        return EXIT_FOUND if outcome.changed_files else EXIT_CLEAN
    if args.exit_non_zero_on_fix and outcome.changed_files:
        return EXIT_FOUND
    return EXIT_FOUND if outcome.diagnostics else EXIT_CLEAN


def entry() -> None:
    """The console script. Once torch is loaded, tearing the interpreter down costs about
    a second per run: after the output is flushed there is nothing left to clean up."""
    status = main()
    if "torch" not in sys.modules:
        sys.exit(status)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


if __name__ == "__main__":
    entry()
