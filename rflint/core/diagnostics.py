"""What the rules emit and what reporters format: plain, torch-free data."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rflint.core.result import Result


@dataclass(frozen=True)
class Edit:
    """Replace the characters of one literal (1-based line, 1-based character columns)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    old: str
    new: str


@dataclass(frozen=True)
class Fix:
    """A verified change of stride / patch-size literals, in ruff's safety terms."""

    applicability: str  # "safe" | "unsafe" | "display-only"
    description: str
    edits: tuple[Edit, ...]
    models: tuple[str, ...]
    i_min_after: tuple[int, ...]
    flops_before: int | None = None
    flops_after: int | None = None
    params_before: int | None = None
    params_after: int | None = None
    model_files: tuple[str, ...] = ()  # the file of each of ``models`` (names repeat across files)


@dataclass(frozen=True)
class LayerRef:
    name: str
    r_min: tuple[int, ...]
    models: tuple[str, ...] = ()  # the models that have this layer (a line can build several)


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    file: str  # absolute path
    line: int  # 1-based
    column: int  # 1-based, in characters
    end_line: int
    end_column: int
    models: tuple[str, ...]
    layers: tuple[LayerRef, ...] = ()
    severity: str = "error"
    fix: Fix | None = None
    alternatives: tuple[Fix, ...] = ()
    fix_note: str | None = None  # why an RF003 has no fix though fixes were searched (time ran out)


@dataclass
class ModelReport:
    """One discovered model: where it is defined and what the analysis found."""

    name: str
    file: str
    line: int
    column: int
    input_res: tuple[int, ...]
    kind: str = "factory"  # "factory" | "class"
    status: str = "analyzed"  # "analyzed" | "error" | "skipped" (not a model to lint)
    error: str | None = None
    skip_reason: str | None = None  # why a "skipped" model is not one to lint
    result: Result | None = None
    type_name: str = ""  # "module:qualname" of the class (for class models)
    component_types: frozenset[str] = frozenset()  # "module:qualname" of every submodule class
    input_res_source: str = "option"
    fixes: tuple[Fix, ...] = ()  # verified candidates, best first
    layer_count: int = 0  # layers analyzed (``keep_reported_layers`` keeps fewer in ``result``)
    configured: bool = False  # named in [tool.rflint] models: never dropped as a building block
    fix_note: str | None = None  # why its fix search did not finish (the file's time ran out)

    def __post_init__(self) -> None:
        if self.result is not None and not self.layer_count:
            self.layer_count = len(self.result.layers)

    def keep_reported_layers(self) -> None:
        """Drop the layers no rule reports at ``input_res``: the report crosses processes
        and is stored in the cache, where hundreds of layers per model would make a warm
        run spend its time unpickling."""
        if self.result is None:
            return
        res = self.input_res
        self.layer_count = len(self.result.layers)
        reported = [l for l in self.result.layers if l.is_underutilized(res) or l.is_unproductive(res)]
        self.result = replace(self.result, layers=reported)


SKIPPED = "skipped "  # how a note about a candidate that is no model to lint begins: "skipped NAME: reason"


@dataclass
class FileReport:
    """Everything one linted file produced, ready for the rules and the cache."""

    file: str
    models: list[ModelReport] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # file-level (import) problems
    imported_files: tuple[str, ...] = ()  # user-editable files its import pulled in (cache keys)
    hashes: dict[str, str] = field(default_factory=dict)  # sha256 of those files when analysed
    skipped: list[str] = field(default_factory=list)  # "skipped NAME: reason" (SKIPPED), for --verbose
    read_files: tuple[str, ...] = ()  # other user files the import and builds opened (cache keys; may not exist)
    environment: dict[str, str | None] = field(default_factory=dict)  # variables read -> sha256 of value (None: unset)
    installed: tuple[str, ...] = ()  # top-level names of installed packages imported (cache keys on their versions)
    output_lines: int = 0  # lines the import and builds printed (fds 1 and 2), for --verbose
    complete: bool = True  # False when time ran out (models not reached, a fix search stopped): never cached


def failure(code: str, file: str, line: int, column: int, message: str, models=()) -> Diagnostic:
    """A diagnostic for what could not be done (RF9xx): a point, not a span."""
    return Diagnostic(code, message, file, line, column, line, column, tuple(models))
