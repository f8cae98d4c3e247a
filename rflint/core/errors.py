"""One line for whatever a model's code raises: reports name the reason, never a traceback.

Every stage that runs user code (front ends building models, the fix search rebuilding
them, the workers importing files) says the same thing about the same error.
"""

from __future__ import annotations

DOWNLOAD_REFUSED = "tried to download weights; rflint builds without weights"
memory_limit: int | None = None  # bytes a worker may allocate (set by the sandbox), named when it runs out


class NetworkBlocked(BaseException):
    """User code tried to reach the network. A BaseException: download helpers retry on
    ``Exception`` until they give up, which is what made a build take minutes."""

    def __init__(self) -> None:
        super().__init__(DOWNLOAD_REFUSED)


def out_of_memory() -> str:
    limit = f" (--max-memory {memory_limit / 2**30:.3g} GiB)" if memory_limit else ""
    return f"ran out of memory{limit}"


def describe_os_error(error: OSError) -> str:
    """``path: No such file or directory``, not the errno that ``error.args[0]`` holds."""
    reason = error.strerror or str(error)
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def one_line(error: BaseException) -> str:
    if isinstance(error, NetworkBlocked):
        return DOWNLOAD_REFUSED
    if isinstance(error, MemoryError) or "can't allocate memory" in str(error):  # torch's allocator says so
        return out_of_memory()
    text = " ".join(str(error).split("\n")[0].split("While executing")[0].split())
    if isinstance(error, SystemExit):
        return f"SystemExit: the file called sys.exit({error.code!r}) at import"
    if isinstance(error, OSError) and error.strerror:  # not "[Errno 2] ..."
        return f"{type(error).__name__}: {describe_os_error(error)}"
    if isinstance(error, SyntaxError):
        return f"SyntaxError: {error.msg}" + (f" (line {error.lineno})" if error.lineno else "")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
