"""Where rflint's settings come from: the closest config file, then the command line.

Follows ruff: the closest ``.rflint.toml`` / ``rflint.toml`` / ``pyproject.toml`` with a
``[tool.rflint]`` table wins (files are not merged), keys are kebab-case, globs are relative
to the config file's folder, and a value given on the command line replaces the file's.
Torch-free: this runs on the warm cached path.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

from rflint.core.resolution import parse_resolution
from rflint.fix import DEFAULT_MAX_FLOPS_RATIO
from rflint.source.importers import DEFAULT_EXCLUDE

CONFIG_NAMES = (".rflint.toml", "rflint.toml", "pyproject.toml")  # precedence within one folder

_FILE_TARGET = re.compile(r"(?P<file>.+\.py)::(?P<name>[A-Za-z_][\w.]*)")
_MODULE_TARGET = re.compile(r"(?P<module>[A-Za-z_][\w.]*):(?P<name>[A-Za-z_][\w.]*)")
_WILDCARD = re.compile(r"[*?[]")  # what makes an fnmatch pattern more than a literal name


class ConfigError(ValueError):
    """A bad config file or option; the CLI prints the one-line message and exits 2."""


@dataclass(frozen=True)
class ModelEntry:
    """A model named in the config, for factories that need arguments or live in a package."""

    target: str  # as written: "path.py::name" or "package.module:factory"
    name: str
    file: Path | None = None  # absolute, for "path.py::name"
    module: str | None = None  # for "package.module:factory"
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_res: tuple[int, int] | None = None  # None: the global input resolution applies
    arguments: str = ""  # a Python argument list: what TOML cannot write (None, config objects, calls)


@dataclass
class Settings:
    """The resolved configuration that discovery, the runner and the filters read."""

    root: Path = field(default_factory=Path.cwd)  # the config's folder: globs are relative to it
    config_file: Path | None = None
    input_res: tuple[int, int] | None = None  # None: not configured (or auto)
    input_res_auto: bool = False  # use each model's declared resolution
    select: tuple[str, ...] = ("RF",)
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    models: tuple[ModelEntry, ...] = ()
    timeout: float = 60.0
    max_flops_ratio: float = DEFAULT_MAX_FLOPS_RATIO
    max_memory: int | None = None  # bytes per worker; None: half the machine's memory


class _BadValue(ValueError):
    """A value parser's complaint; ``_parse`` adds the file and the key (plus ``at``, e.g. ``[1].target``)."""

    def __init__(self, reason: str, at: str = ""):
        super().__init__(reason)
        self.at = at


def find_config(start: Path) -> Path | None:
    """The closest config file at or above ``start`` (a file or a folder).

    A ``pyproject.toml`` counts only if it has a ``[tool.rflint]`` table, so a project's
    sub-package with its own unrelated ``pyproject.toml`` does not hide the real config.
    """
    folder = start.absolute()
    if not folder.is_dir():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        for name in CONFIG_NAMES:
            path = candidate / name
            if path.is_file() and (name != "pyproject.toml" or _rflint_table(path) is not None):
                return path
    return None


def load_settings(config_path: Path | None, cli: dict[str, Any]) -> Settings:
    """Settings from ``config_path`` (None: defaults only) with the command-line values on top.

    ``cli`` uses the file's kebab-case keys and value forms (``{"input-res": "224x192"}``);
    absent keys fall back to the file. Globs from both are relative to ``Settings.root``
    (the config's folder, else the working directory). Raises ConfigError naming the file
    (``--key`` for ``cli``) and the key.
    """
    settings = Settings()
    from_file: dict[str, Any] = {}
    if config_path is not None:
        config_path = config_path.resolve()
        settings.root, settings.config_file = config_path.parent, config_path
        is_pyproject = config_path.name == "pyproject.toml"
        table = _rflint_table(config_path) if is_pyproject else _read_toml(config_path)
        where = f"{_display(config_path)}: " + ("[tool.rflint] " if is_pyproject else "")
        from_file = _parse({} if table is None else table, where, "'{}'", settings.root)
    from_cli = _parse(cli, "", "'--{}'", Path.cwd())

    # ruff's layering: a command-line select starts over; otherwise its ignores add to the file's.
    ignore = from_cli.get("ignore", ())
    if "select" not in from_cli:
        ignore = from_file.get("ignore", ()) + ignore
    extend_exclude = from_file.get("extend_exclude", ()) + from_cli.get("extend_exclude", ())
    return dataclasses.replace(
        settings, **{**from_file, **from_cli, "ignore": ignore, "extend_exclude": extend_exclude}
    )


def is_selected(code: str, settings: Settings, file: Path) -> bool:
    """Whether ``code`` is reported for ``file``.

    The most specific matching selector decides between ``select`` and ``ignore`` (ignore
    wins a tie), as in ruff and flake8; then ``per-file-ignores`` can switch it off.
    """
    selected = _specificity(code, settings.select)
    if selected < 0 or _specificity(code, settings.ignore) >= selected:
        return False
    return not any(
        _specificity(code, selectors) >= 0 and matches_any(file, (pattern,), settings.root)
        for pattern, selectors in settings.per_file_ignores.items()
    )


def matches_any(path: Path, patterns: Iterable[str], root: Path) -> bool:
    """ruff's glob matching: against the path relative to ``root`` and against its basename.

    ``*`` also matches ``/`` (so ``models/legacy/*`` covers sub-folders) and a leading
    ``**/`` also matches zero folders. Paths outside ``root`` are matched as absolute paths.
    """
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        relative = absolute
    candidates = (Path(relative).as_posix(), Path(absolute).name)
    names, globs = _split_patterns(tuple(patterns))
    return any(c in names for c in candidates) or any(fnmatchcase(c, p) for p in globs for c in candidates)


@functools.lru_cache(maxsize=64)
def _split_patterns(patterns: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The patterns without a wildcard (each default exclude), compared as they are, and
    the others; each ``**/x`` also as ``x``. Matching every file against 26 fnmatch regexes
    took a tenth of a warm run."""
    expanded = (*patterns, *(p[3:] for p in patterns if p.startswith("**/")))
    return (frozenset(p for p in expanded if not _WILDCARD.search(p)),
            tuple(p for p in expanded if _WILDCARD.search(p)))


def _specificity(code: str, selectors: Iterable[str]) -> int:
    """Length of the longest selector that is a prefix of ``code``; -1 when none matches."""
    return max((len(selector) for selector in selectors if code.startswith(selector)), default=-1)


@functools.cache
def _known_codes() -> tuple[str, ...]:
    from rflint.core.rules import rule_by_code  # here: a replayed warm run without --select never loads the rules

    return tuple(rule_by_code())


def _is_selector(text: str) -> bool:
    """A code or a prefix of one that keeps the whole letter part: ``RF``, ``RF0``, ``RF001``, not ``R``."""
    return any(code.startswith(text) and not code[len(text):][:1].isalpha() for code in _known_codes())


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):  # imported here: a run without a config file reads no TOML
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{_display(path)}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{_display(path)}: cannot read: {error.strerror}") from None


def _rflint_table(pyproject: Path) -> Any:
    tool = _read_toml(pyproject).get("tool")
    return tool.get("rflint") if isinstance(tool, dict) else None


def _display(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when inside it."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def _shown(value: Any) -> str:
    """A value the way TOML would write it (``"big"``, ``[1, 2]``), for error messages."""
    return json.dumps(value, default=str)


def _unknown_key(key: str, known: Iterable[str], label: str) -> str:
    import difflib  # only for this error message

    suggestions = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {label.format(suggestions[0])}?)" if suggestions else ""
    return f"unknown key {label.format(key)}{hint}"


def _parse(table: Any, where: str, label: str, root: Path) -> dict[str, Any]:
    """Validate one source's keys into ``Settings`` field values (only the keys it sets)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}expected a table, got {_shown(table)}")
    fields: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _PARSERS:
            raise ConfigError(where + _unknown_key(key, _PARSERS, label))
        try:
            fields.update(_PARSERS[key](value, root))
        except _BadValue as error:
            raise ConfigError(f"{where}invalid value for {label.format(key + error.at)}: {error}") from None
    return fields


def _resolution(value: Any, allow_auto: bool) -> tuple[int, ...] | Literal["auto"]:
    try:
        return parse_resolution(value, allow_auto)
    except ValueError as error:
        raise _BadValue(str(error)) from None


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _BadValue(f"expected a list of strings, got {_shown(value)}")
    return tuple(value)


def _selectors(value: Any) -> tuple[str, ...]:
    selectors = _strings(value)
    for selector in selectors:
        if not _is_selector(selector):
            raise _BadValue(f"Unknown rule selector `{selector}`")
    return selectors


def _input_res_field(value: Any, root: Path) -> dict[str, Any]:
    resolution = _resolution(value, allow_auto=True)
    auto = resolution == "auto"
    return {"input_res": None if auto else resolution, "input_res_auto": auto}


def _per_file_ignores_field(value: Any, root: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadValue(f'expected a table of glob = ["CODE", ...], got {_shown(value)}')
    return {"per_file_ignores": {pattern: _selectors(codes) for pattern, codes in value.items()}}


def _timeout_field(value: Any, root: Path) -> dict[str, Any]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise _BadValue(f"expected a positive number of seconds, got {_shown(value)}")  # nan fails too
    return {"timeout": float(value)}


def _max_flops_ratio_field(value: Any, root: Path) -> dict[str, Any]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
        raise _BadValue(f"expected a number >= 1 (the FLOPs after a fix / before it), got {_shown(value)}")
    return {"max_flops_ratio": float(value)}


_MEMORY_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory(text: str | int) -> int:
    """Bytes from ``4G``, ``512M``, ``2GiB``, ``1.5G`` or a plain number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    size = float(match[1]) * _MEMORY_UNITS[match[2].upper()] if match and not isinstance(text, bool) else 0
    if size < 1:
        raise ValueError(f"expected a size such as 4G or 512M, got {text!r}")
    return int(size)


def _max_memory_field(value: Any, root: Path) -> dict[str, Any]:
    try:
        return {"max_memory": parse_memory(value)}
    except ValueError as error:
        raise _BadValue(str(error)) from None


def _models_field(value: Any, root: Path) -> dict[str, Any]:
    if not isinstance(value, list):
        raise _BadValue(f"expected a list of tables, got {_shown(value)}")
    entries = []
    for index, item in enumerate(value):
        try:
            entries.append(model_entry(item, root))
        except _BadValue as error:
            raise _BadValue(str(error), f"[{index}]{error.at}") from None
    return {"models": tuple(entries)}


_MODEL_KEYS = ("target", "kwargs", "arguments", "input-res")


def model_entry(item: Any, root: Path) -> ModelEntry:
    if not isinstance(item, dict):
        raise _BadValue(f"expected a table, got {_shown(item)}")
    for key in item:
        if key not in _MODEL_KEYS:
            raise _BadValue(_unknown_key(key, _MODEL_KEYS, "'{}'"))
    target = item.get("target")
    file_target = _FILE_TARGET.fullmatch(target) if isinstance(target, str) else None
    module_target = _MODULE_TARGET.fullmatch(target) if isinstance(target, str) else None
    if file_target is None and module_target is None:
        raise _BadValue(f'expected "path.py::name" or "package.module:factory", got {_shown(target)}', ".target")
    kwargs = item.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise _BadValue(f"expected a table of keyword arguments, got {_shown(kwargs)}", ".kwargs")
    try:
        input_res = _resolution(item["input-res"], allow_auto=False) if "input-res" in item else None
    except _BadValue as error:
        raise _BadValue(str(error), ".input-res") from None
    common = {"kwargs": kwargs, "input_res": input_res, "arguments": _arguments(item.get("arguments", ""))}
    if file_target is not None:
        file = Path(os.path.abspath(root / file_target["file"]))
        return ModelEntry(target, file_target["name"], file=file, **common)
    return ModelEntry(target, module_target["name"], module=module_target["module"], **common)


def _arguments(value: Any) -> str:
    """``arguments = "2, norm=None, config=transformers.ConvNextConfig(depths=[2, 2])"``: checked
    here as Python call arguments, evaluated where the model is built (in its module's
    namespace, where any importable module can also be named)."""
    if not isinstance(value, str):
        raise _BadValue(f'expected a string of Python arguments, e.g. "2, norm=None", got {_shown(value)}', ".arguments")
    try:
        call = ast.parse(f"f({value})", mode="eval").body
    except SyntaxError as error:
        raise _BadValue(f"not Python call arguments: {error.msg}: {_shown(value)}", ".arguments") from None
    if not isinstance(call, ast.Call) or any(k.arg is None for k in call.keywords) or any(
            isinstance(a, ast.Starred) for a in call.args):
        raise _BadValue(f"expected plain positional and keyword arguments, got {_shown(value)}", ".arguments")
    return value


def _tuple_field(name: str, parse: Callable[[Any], tuple[str, ...]]) -> Callable[[Any, Path], dict[str, Any]]:
    return lambda value, root: {name: parse(value)}


_PARSERS = {
    "input-res": _input_res_field,
    "select": _tuple_field("select", _selectors),
    "ignore": _tuple_field("ignore", _selectors),
    "exclude": _tuple_field("exclude", _strings),
    "extend-exclude": _tuple_field("extend_exclude", _strings),
    "per-file-ignores": _per_file_ignores_field,
    "models": _models_field,
    "timeout": _timeout_field,
    "max-flops-ratio": _max_flops_ratio_field,
    "max-memory": _max_memory_field,
}
