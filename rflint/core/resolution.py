"""Input resolutions as users write them: ``224``, ``"224x192"``, ``[16, 112, 112]``, ``auto``.

One parser for the command line, the config file, the Python API and the report command,
so each says the same thing about a typo.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Sequence

_RESOLUTION = re.compile(r"[1-9][0-9]*(?:[xX][1-9][0-9]*){0,2}")


def parse_resolution(value: Any, allow_auto: bool) -> tuple[int, ...] | Literal["auto"]:
    """An input resolution from TOML or the command line: ``224``, ``"224x192"``, ``[224, 192]``,
    and for a Conv3d model depth x height x width (``"16x112x112"``, ``[16, 112, 112]``)."""
    if allow_auto and value == "auto":
        return "auto"
    if isinstance(value, str) and _RESOLUTION.fullmatch(value.strip()):
        sizes = [int(size) for size in value.strip().lower().split("x")]
        value = sizes if len(sizes) > 1 else sizes[0]
    if _positive_int(value):
        return value, value
    if isinstance(value, list) and len(value) in (2, 3) and all(map(_positive_int, value)):
        return tuple(value)
    forms = 'a positive int, "HxW", "DxHxW" or "auto"' if allow_auto else 'a positive int, "HxW" or "DxHxW"'
    raise ValueError(f"expected {forms}, got {json.dumps(value, default=str)}")


def parse_input_res(text: str) -> tuple[int, ...] | Literal["auto"]:
    """``224`` (square), ``224x192`` (height x width), ``16x112x112`` (depth x height x width,
    for Conv3d models) or ``auto`` (each model's declared size).

    Raises ValueError with the reason, e.g. ``expected a positive int, "HxW", "DxHxW" or "auto", got "big"``.
    """
    return parse_resolution(text, allow_auto=True)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def broadcast(res):
    """A square resolution applies to every axis, so Conv1d and Conv3d models get it too."""
    return res[0] if isinstance(res, tuple) and len(set(res)) == 1 else res


def as_resolution(value: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    """An int applies to every axis; a sequence must name one size per axis."""
    if isinstance(value, int):
        return (value,) * ndim
    value = tuple(int(v) for v in value)
    if len(value) != ndim:
        raise ValueError(f"input resolution {value} has {len(value)} axes, the model has {ndim}")
    return value


def resolution_argument(value) -> int | tuple[int, ...]:
    """``input_res`` as ``as_resolution`` takes it: an int, a sequence of ints, or the
    command line's ``"224"``, ``"224x192"``, ``"16x112x112"``; anything else is a ValueError
    that names the accepted forms."""
    if isinstance(value, str):
        try:
            parsed = parse_input_res(value)
        except ValueError:
            parsed = "auto"
        if parsed != "auto":
            return broadcast(parsed)
    elif _positive_int(value):
        return value
    elif isinstance(value, Sequence) and value and all(map(_positive_int, value)):
        return tuple(value)
    raise ValueError(f'input_res: expected a positive int, a sequence of them, "HxW" or "DxHxW", got {value!r}')
