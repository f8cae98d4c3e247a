"""The ``rflint`` command: parse options, lint, fix, report, choose the exit status."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

from rflint.run import options

EXIT_CLEAN, EXIT_FOUND, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# name -> (module with ``main(argv) -> int``, the line ``rflint --help`` shows)
COMMANDS = {
    "report MODEL_SPEC [-o FILE]": ("rflint.run.report_command", "write an HTML page of one model's receptive fields and fix"),
    "server": ("rflint.server", "a language server (LSP over stdio) for editors"),
}


def parser() -> argparse.ArgumentParser:
    """The lint options, with the subcommands in the usage and the epilog."""
    p = options.parser()
    p.usage = "rflint [PATHS ...] [options]\n       rflint {report,server} ... (see rflint COMMAND --help)"
    p.epilog = "commands:\n" + "\n".join(f"  {name:<30}{summary}" for name, (_, summary) in COMMANDS.items())
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

        return importlib.import_module(module).main(argv[1:])
    args = parser().parse_args(argv)
    from rflint.run.config import ConfigError
    from rflint.run.files import UsageError

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
        from rflint.core.errors import describe_os_error

        print(f"rflint: error: {describe_os_error(error)}", file=sys.stderr)
        return EXIT_USAGE


def _run(args) -> int:
    from rflint.run.session import Session

    if args.explain:
        from rflint.report.explain import explain

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
    if _streams(args):
        from rflint.run.session import Streamer

        session.streamed = Streamer(session, _write_now)
    outcome = session.run()
    for warning in session.warnings:
        print(f"rflint: warning: {warning}", file=sys.stderr)
    if args.verbose:
        for note in outcome.notes:
            print(f"rflint: info: {note}", file=sys.stderr)
    text = "" if args.diff else session.streamed.rest(outcome) if session.streamed else session.render(outcome)
    if args.show_fixes:
        text += session.show_fixes(outcome)
    # A diff is bytes: each file's hunks in that file's encoding, so patch tools apply it.
    data = outcome.diff + text.encode()
    if args.output_file:
        from rflint.run.cache import write_file_atomically

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


def _streams(args) -> bool:
    """Whether the output shows each file's diagnostics as it finishes: the line formats
    printed on stdout for one lint (json, sarif and github are one document written at the
    end; --fix and --diff show what the last pass left; --statistics counts)."""
    from rflint.report import STREAMED

    return (args.format or "concise") in STREAMED and not (
        args.fix or args.diff or args.statistics or args.output_file)


def _write_now(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


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
