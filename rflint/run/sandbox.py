"""What a worker process does to itself before it runs user code, and what it records.

rflint imports and runs model code, so each worker (forked, never the rflint process
itself) confines what that code can do to the run:

- file descriptors 0, 1 and 2 go to ``/dev/null`` and to a private file, so nothing a model
  prints, through ``sys.stdout``, ``os.write(1, ...)`` or a subprocess, reaches rflint's
  report; the file counts the lines for ``--verbose``;
- network access raises ``NetworkBlocked`` from an audit hook the moment code resolves a
  host name or connects (a hub client retrying on ``Exception`` cannot swallow it), and
  where the kernel allows, the process also moves into an empty network namespace, so
  C code and subprocesses find no network either;
- an address-space limit turns a runaway allocation into a ``MemoryError``;
- an audit hook on ``open`` and a wrapper around ``os.environ`` record the files and the
  environment variables the import and the build read, for the cache key.

Audit hooks cannot be removed, which is why this only ever runs in a worker.
"""

from __future__ import annotations

import hashlib
import os
import resource
import sys

from rflint.core import errors
from rflint.core.errors import NetworkBlocked

_NETWORK_EVENTS = frozenset({
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "urllib.Request",
})
_ADDRESSED_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_WRITE_MODES = frozenset("wax")
_NOT_FILES = ("/proc/", "/sys/", "/dev/")


files_read: set[str] = set()  # absolute paths opened for reading since the worker started
environment_read: dict[str, str | None] = {}  # name -> sha256 of the value read (None: unset)
set_here: set[str] = set()  # variables this process set or removed (their reads are not inputs)
_capture = None  # the file fds 1 and 2 write to


def confine(max_memory: int | None) -> None:
    """Everything above, for the worker that runs a package's shared import."""
    redirect_output()
    _leave_the_network()
    sys.addaudithook(_audit)
    os.environ.__class__ = _RecordingEnviron
    if max_memory and (forked_with := _address_space()):
        errors.memory_limit = max_memory
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        wanted = forked_with + max_memory
        resource.setrlimit(resource.RLIMIT_AS, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))


def redirect_output() -> None:
    """Point fds 1 and 2 at a fresh private file (a forked child calls it again, to count
    its own lines) and fd 0 at /dev/null (a model waiting for input would hang the run)."""
    import tempfile  # here: the cache (a warm run) imports this module for value_digest

    global _capture
    _capture = tempfile.TemporaryFile()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(_capture.fileno(), 1)
    os.dup2(_capture.fileno(), 2)


def lines_printed() -> int:
    """Lines written to fds 1 and 2 since the last ``redirect_output`` (a last line without
    its newline counts too)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # user code may close or replace them
            pass
    data = os.pread(_capture.fileno(), os.fstat(_capture.fileno()).st_size, 0)
    return data.count(b"\n") + (not data.endswith(b"\n") and bool(data))


def _address_space() -> int:
    """Bytes mapped now; 0 where /proc is missing (then no limit is set)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _leave_the_network() -> None:
    """An empty network namespace (in a user namespace mapping our own ids, so files look
    the same); where unprivileged namespaces are off, the audit hook alone blocks."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # as tempfile above

    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newuser, clone_newnet = 0x10000000, 0x40000000
    if os.geteuid() == 0:
        # root needs no user namespace, and inside one it would lose its access to files of
        # users the namespace does not map (a 0640 model file of another user: EACCES)
        libc.unshare(clone_newnet)
        return
    if libc.unshare(clone_newuser | clone_newnet) != 0:
        return
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
    except OSError:
        pass


def _audit(event: str, args: tuple) -> None:
    if event == "open":
        _record_open(*args[:3])
    elif event in _NETWORK_EVENTS or (event in _ADDRESSED_EVENTS and isinstance(args[1], tuple)):
        raise NetworkBlocked  # an address tuple: IP; a str or bytes address is a local socket


def _record_open(path, mode, flags) -> None:
    if isinstance(path, int) or path is None:
        return
    path = os.path.abspath(os.fsdecode(path))
    if path.startswith(_NOT_FILES):
        return
    if isinstance(mode, str):
        writing = _WRITE_MODES.intersection(mode)
    else:  # os.open: creating (a temporary file too) is writing
        writing = (flags or 0) & os.O_ACCMODE == os.O_WRONLY or (flags or 0) & (os.O_CREAT | getattr(os, "O_TMPFILE", 0))
    if not writing:
        files_read.add(path)


def value_digest(value: str) -> str:
    """What the cache keeps of an environment variable (not the value: it may be a token)."""
    return hashlib.sha256(value.encode(errors="surrogateescape")).hexdigest()


class _RecordingEnviron(type(os.environ)):
    """``os.environ`` that notes each variable user code looks up (``get``, ``in`` and
    ``os.getenv`` all come through ``__getitem__``); ``copy()`` for a subprocess is no lookup.
    A variable the process set or removed itself before reading it (Keras's KERAS_BACKEND,
    which rflint sets) is not an input: it would never match the next run's environment."""

    def __setitem__(self, key, value):
        set_here.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        set_here.add(key)
        super().__delitem__(key)

    def __getitem__(self, key):
        if key in set_here:
            return super().__getitem__(key)
        try:
            value = super().__getitem__(key)
        except KeyError:
            environment_read[key] = None
            raise
        environment_read[key] = value_digest(value)
        return value

    def copy(self):
        return {self.decodekey(key): self.decodevalue(value) for key, value in self._data.items()}
