"""Find the models a source file defines, without running anything that is not one.

A model is (a) a public function defined in the file that is shown to return a model,
by its return annotation, a model library's registry (timm's ``register_model``) or its
source (``infer``), and that can be called with no user input; or (b) a model class
defined in the file that can be built with no arguments (Hugging Face models from their
``config_class()`` defaults). Parameters asking for pretrained weights get their "no
weights" value. Losses, metrics, abstract bases, modules whose forward needs two inputs and
functions that look like programs (``main``, argparse) are skipped, each with its reason.
Whether a class is only a building block of another model is decided later, across the run.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from torch import nn

from rflint.core.diagnostics import SKIPPED
from rflint.source.infer import annotated_model, program_reason, registered, returns_model
from rflint.source.syntax import parsed

if TYPE_CHECKING:
    from rflint.core.result import Result


@dataclass(frozen=True)
class Framework:
    """What discovery needs from a front end: which classes are models and their forward."""

    is_model_class: Callable[[Any], bool]
    forward: str  # the name of the method a model is called through
    base_forward: Any  # the base class's forward: a class keeping it has none of its own
    # Keras: a subclass keeping the base ``call`` builds a functional graph in __init__: a model
    inherited_forward_is_model: bool = False


def is_torch_module_class(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, nn.Module)


TORCH = Framework(is_torch_module_class, "forward", nn.Module.forward)

# Parameters that ask for pretrained weights: ``weights``, ``pretrained``, ``encoder_weights``,
# ``pretrained_backbone``... (``init_weights`` is how to initialise, not what to load).
WEIGHTS_PARAMETER = re.compile(r"(?!init_)(\w+_)?(weights|pretrained)(_\w+)?")


@dataclass(frozen=True)
class Deferred:
    """An argument made when the model is built (a config object, a configured expression),
    so making it costs nothing until then and a failure is the model's build error."""

    make: Callable[[], Any]
    text: str  # as the user would write it

    def __repr__(self) -> str:
        return self.text


def _made(value: Any) -> Any:
    return value.make() if isinstance(value, Deferred) else value


@dataclass
class ModelEntry:
    name: str
    file: str
    line: int
    column: int
    kind: str  # "factory" | "class"
    target: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_res: tuple[int, ...] | None = None  # configured for this model
    args: tuple = ()
    configured: bool = False  # named in [tool.rflint] models: never dropped as a building block
    attribute: str = ""  # where the target is in its module ("EfficientNet.from_name"); default: name

    def factory(self) -> Callable[[], nn.Module]:
        return self.factory_from(self.target)

    def factory_in(self, module: ModuleType) -> Callable[[], nn.Module]:
        """The same call with the target taken from ``module`` (the file re-imported with other literals)."""
        return self.factory_from(functools.reduce(getattr, (self.attribute or self.name).split("."), module))

    def factory_from(self, target: Callable[..., nn.Module]) -> Callable[[], nn.Module]:
        """A call of ``target`` with the entry's arguments."""
        if not any(isinstance(v, Deferred) for v in (*self.args, *self.kwargs.values())):
            return functools.partial(target, *self.args, **self.kwargs)

        def build():
            return target(*map(_made, self.args), **{k: _made(v) for k, v in self.kwargs.items()})

        build.__name__, build.__wrapped__ = self.name, target  # the definition site is the target's
        return build

    @property
    def type_name(self) -> str:
        """``module:qualname`` of the factory or class, as ``component_types`` names classes."""
        return f"{self.target.__module__}:{self.target.__qualname__}"


def definitions(source: str) -> dict[str, tuple[int, int]]:
    """Top-level def/class name -> (line, 1-based column of the keyword)."""
    return {
        node.name: (node.lineno, node.col_offset + 1)
        for node in parsed(source).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def no_weights_value(parameter: inspect.Parameter) -> tuple[bool, Any]:
    """Whether ``parameter`` asks for pretrained weights, and the value that asks for none:
    ``False`` where the default is a bool, else ``None`` (``"imagenet"``, a weights enum).
    A default that is neither (``loss_weights=(1, 1)``) is no request to download."""
    if not WEIGHTS_PARAMETER.fullmatch(parameter.name):
        return False, None
    default = parameter.default
    if isinstance(default, bool):
        return True, False
    if default is parameter.empty or default is None or isinstance(default, (str, bytes)) or hasattr(default, "url"):
        return True, None
    return False, None


def no_argument_kwargs(fn) -> dict[str, Any] | None:
    """Keyword arguments that make ``fn`` callable with no user input and no weights
    loaded, or None if impossible. A class with a ``config_class`` (Hugging Face's
    ``PreTrainedModel``) gets that class's defaults for its ``config`` parameter."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kwargs = {}
    for p in parameters:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        asks_weights, value = no_weights_value(p)
        if asks_weights:
            kwargs[p.name] = value
        elif p.name == "config" and p.default is p.empty and (config := _config_class(fn)) is not None:
            kwargs[p.name] = Deferred(config, f"{config.__name__}()")
        elif p.default is p.empty:
            return None
    return kwargs


def _config_class(cls) -> type | None:
    config_class = getattr(cls, "config_class", None) if inspect.isclass(cls) else None
    return config_class if inspect.isclass(config_class) else None


def class_skip_reason(cls, framework: Framework = TORCH) -> str | None:
    """Why a model class is not a model to lint (a loss, a metric, an abstract base, a
    forward taking two inputs), or None."""
    names = [klass.__name__ for klass in cls.__mro__]
    if any(name.endswith("Loss") for name in names):  # torch's base class is _Loss
        return "a loss, not a model"
    if any(name.endswith("Metric") for name in names):
        return "a metric, not a model"
    forward = getattr(cls, framework.forward, None)
    if getattr(forward, "__isabstractmethod__", False) or _only_raises_not_implemented(forward):
        return f"an abstract base: {framework.forward}() raises NotImplementedError"
    return forward_inputs_reason(forward, framework)


def forward_inputs_reason(forward, framework: Framework = TORCH) -> str | None:
    """"forward needs 2 inputs (x, mask)" when more than one input has no default."""
    try:
        parameters = list(inspect.signature(forward).parameters.values())[1:]  # after self
    except (TypeError, ValueError):
        return None
    required = [p.name for p in parameters
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if len(required) > 1:
        return f"{framework.forward}() needs {len(required)} inputs ({', '.join(required)})"
    return None


def _only_raises_not_implemented(function) -> bool:
    code = getattr(function, "__code__", None)
    if code is not None and not _mentions_not_implemented(code):
        return False  # the source need not be read: tokenizing a long forward costs ms
    try:
        node = ast.parse(inspect.cleandoc("\n" + inspect.getsource(function))).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return False
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return (len(body) == 1 and isinstance(body[0], ast.Raise) and body[0].exc is not None
            and "NotImplementedError" in ast.unparse(body[0].exc))


def _mentions_not_implemented(code) -> bool:
    """Whether a function's code names NotImplementedError or holds a string saying it:
    what the raise's text must contain for ``_only_raises_not_implemented``."""
    word = "NotImplementedError"
    return word in code.co_names or any(isinstance(c, str) and word in c for c in code.co_consts)


def _constructors(cls) -> list[str]:
    """Classmethods that build the class from a name or a config (``EfficientNet.from_name``)."""
    return [name for name, value in vars(cls).items() if isinstance(value, classmethod) and name.startswith("from_")]


def _factory_kind(function, framework: Framework) -> str | None:
    """How ``function`` is shown to return a model ("annotation", "registry", "source"), or None."""
    if annotated_model(function, framework.is_model_class):
        return "annotation"
    if registered(function):
        return "registry"
    return "source" if returns_model(function, framework.is_model_class) else None


def find_models(module: ModuleType, file: str, source: str,
                framework: Framework = TORCH) -> tuple[list[ModelEntry], list[str]]:
    """Models defined in ``module`` (loaded from ``file``), and why other candidates were skipped."""
    lines = definitions(source)
    entries, skipped = [], []

    def skip(name: str, reason: str) -> None:
        skipped.append(f"{SKIPPED}{name}: {reason}")

    for name, value in vars(module).items():
        if name.startswith("_") or name not in lines or getattr(value, "__module__", None) != module.__name__:
            continue
        if framework.is_model_class(value):
            inherited = getattr(value, framework.forward, None) is framework.base_forward
            if inherited and not framework.inherited_forward_is_model:
                skip(name, f"no {framework.forward}() of its own: a base class or a container")
                continue
            if not inherited and (reason := class_skip_reason(value, framework)):
                skip(name, reason)
                continue
            kind = "class"
        elif inspect.isfunction(value):
            shown_by = _factory_kind(value, framework)
            if shown_by is None:
                if no_argument_kwargs(value) is not None:
                    skip(name, "not shown to return a model, so never called")
                continue
            if shown_by != "registry" and (reason := program_reason(value)):
                skip(name, f"never called: {reason}")
                continue
            kind = "factory"
        else:
            continue
        kwargs = no_argument_kwargs(value)
        if kwargs is None:
            constructors = _constructors(value) if kind == "class" else []
            hint = f" (name {name}.{constructors[0]} in [tool.rflint] models)" if constructors else ""
            skip(name, f"needs arguments to be built{hint}")
            continue
        entries.append(ModelEntry(name, file, *lines[name], kind, value, kwargs))
    entries.sort(key=lambda e: e.line)
    return entries, skipped


def _positional_names(target) -> list[str]:
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


class _Importing(dict):
    """A module's names, then any importable top-level module (``transformers``, ``monai``),
    for the expressions of a configured entry's ``arguments``."""

    def __missing__(self, name: str):
        import importlib

        try:
            return importlib.import_module(name)
        except ImportError:
            raise NameError(f"name '{name}' is not defined") from None


def configured_arguments(text: str, module: ModuleType) -> tuple[tuple, dict[str, Any]]:
    """``arguments = "2, norm=None, config=ConvNextConfig(depths=[2, 2])"`` as deferred values,
    each evaluated at build time in the model module's namespace."""
    call = ast.parse(f"f({text})", mode="eval").body
    namespace = _Importing(vars(module))

    def deferred(node: ast.expr) -> Deferred:
        code = compile(ast.Expression(node), f"<[tool.rflint] arguments: {text}>", "eval")
        return Deferred(lambda: eval(code, {"__builtins__": __builtins__}, namespace), ast.unparse(node))

    return tuple(map(deferred, call.args)), {k.arg: deferred(k.value) for k in call.keywords}


def with_configured(entries: list[ModelEntry], module: ModuleType, file: str, source: str, configured,
                    skipped: list[str]) -> list[ModelEntry]:
    """Add the models ``[tool.rflint] models`` names in this file (with their arguments and
    resolution); a configured name replaces the discovered one. The same target named twice
    (with other arguments) is two models, the second named by its arguments."""
    lines = definitions(source)
    by_name = {e.name: e for e in entries}
    for config in configured:
        target = module
        for part in config.name.split("."):
            target = getattr(target, part, None)
        if target is None:
            raise LookupError(f"configured model '{config.target}' is not defined in {file}")
        line, column = lines.get(config.name.split(".")[0], (1, 1))
        kind = "class" if inspect.isclass(target) else "factory"
        args, extra = configured_arguments(config.arguments, module)
        bound = _positional_names(target)[:len(args)]  # given positionally: no default for them
        defaults = {k: v for k, v in (no_argument_kwargs(target) or {}).items() if k not in bound}
        kwargs = {**defaults, **config.kwargs, **extra}
        name = config.name
        if by_name.get(name) is not None and by_name[name].configured:
            shown = [*map(repr, args), *(f"{k}={v!r}" for k, v in {**config.kwargs, **extra}.items())]
            name = f"{name}({', '.join(shown)})"
        by_name[name] = ModelEntry(name, file, line, column, kind, target, kwargs, config.input_res, args, True,
                                   config.name)
        skipped[:] = [note for note in skipped if not note.startswith(f"{SKIPPED}{config.name}:")]
    return sorted(by_name.values(), key=lambda e: e.line)


class NotAModel(Exception):
    """A built module that is no model to lint (no spatial layer, a forward taking two
    inputs): skipped with this reason, not an error."""


# Layers with a bounded receptive field: convolutions, pooling, and a Linear on patches (a
# ViT that patchifies by reshape, timm's NaFlexViT); the analysis keeps only bounded Linears.
SPATIAL_KINDS = frozenset({"conv", "conv_transpose", "pool", "linear"})
NO_SPATIAL_LAYER = "no spatial layer (convolution, pooling or a Linear on patches): no receptive field to check"
# Modules that slide a window over the input; a module with none of them (an activation, an
# MLP, a text model) has no receptive field to speak of.
SPATIAL_MODULES = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                   nn.modules.pooling._LPPoolNd, nn.Unfold, nn.Fold)
# torch's words for an input smaller than a kernel or a pooling window.
TOO_SMALL = re.compile(r"too small|greater than (the )?(actual )?input size|smaller than (the )?kernel"
                       r"|negative|non-positive|must be at least|should be at most|less than the corresponding input",
                       re.IGNORECASE)
LARGEST_PROBE = 4096
PROBE_STEP = 32  # the usual overall stride of a CNN


def analyze_model(entry: ModelEntry, input_res, analyzed) -> "Result":
    """Build and analyse ``entry``; raise NotAModel if the built module is no model to
    lint, and say "needs at least N px" when it only fails for being given a small input."""
    from rflint.frontends.torch.analysis import CaptureError, analyze

    built: list[nn.Module] = []
    factory = entry.factory()

    def keeping_the_model():
        built.append(factory())
        return built[-1]

    keeping_the_model.__name__, keeping_the_model.__wrapped__ = entry.name, entry.target  # the target's definition site
    try:
        result = analyze(keeping_the_model, input_res, name=entry.name, analyzed_files=analyzed)
    except CaptureError as error:
        model = built[-1] if built else None
        if model is not None and (reason := built_skip_reason(model)):
            raise NotAModel(reason) from None
        if model is not None and TOO_SMALL.search(str(error.__cause__ or error)):
            smallest = smallest_resolution(model, input_res)
            if smallest is not None:
                raise CaptureError(str(error), error.component_types,
                                   f"needs at least {smallest} px; it cannot run at {_axes(input_res)} px "
                                   f"(set input-res for it in [tool.rflint] models)") from error
        raise
    except Exception as error:
        constructors = _constructors(entry.target) if entry.kind == "class" and not entry.configured else []
        if constructors:  # EfficientNet(): its defaults are placeholders for from_name's arguments
            raise NotAModel(f"cannot be built bare ({type(error).__name__}); it is built by "
                            f"{entry.name}.{constructors[0]}(...): name that in [tool.rflint] models") from None
        raise
    if not any(layer.kind in SPATIAL_KINDS for layer in result.layers):
        raise NotAModel(NO_SPATIAL_LAYER)
    result.model = built[-1]
    return result


def _axes(res) -> str:
    return "x".join(map(str, res)) if isinstance(res, tuple) and len(set(res)) > 1 else str(max(res) if isinstance(res, tuple) else res)


def built_skip_reason(model: nn.Module) -> str | None:
    """Why a built module that failed to run is not a model to lint, or None."""
    if not any(isinstance(m, SPATIAL_MODULES) for m in model.modules()):
        return NO_SPATIAL_LAYER
    return forward_inputs_reason(type(model).forward)


def smallest_resolution(model: nn.Module, input_res) -> int | None:
    """The smallest square input above ``input_res`` the model runs at, or None if none up
    to LARGEST_PROBE px does. Sizes are tried in steps of PROBE_STEP up to twice
    ``input_res`` (a model whose head wants one exact final map, NASNet-A large, runs in a
    narrow band only), then doubling; the last step is bisected."""
    from rflint.frontends.torch.analysis import capture_probe

    runs = capture_probe(model)

    low = max(input_res) if isinstance(input_res, tuple) else input_res
    sizes = [*range(low + PROBE_STEP, 2 * low, PROBE_STEP), 2 * low]
    while sizes[-1] * 2 <= LARGEST_PROBE:
        sizes.append(sizes[-1] * 2)
    for high in sizes:
        if runs(high):
            break
        low = high
    else:
        return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if runs(middle) else (middle, high)
    return high


def declared_resolution(entry: ModelEntry) -> tuple[int, int] | None:
    """The input size the model's library declares for it (``--input-res auto``), or None.

    timm: the ``input_size`` of the model's default pretrained config, read from timm's
    registry without building the model. torchvision: the size its default weights are
    evaluated at (the crop of classification weights, the resize of segmentation ones).
    pretrainedmodels: the ``input_size`` of the factory's ``pretrained_settings``. Hugging
    Face: the ``image_size`` of the model's config. A library is consulted only if the
    user's code already imported it.
    """
    module = getattr(entry.target, "__module__", None) or ""
    timm, torchvision = sys.modules.get("timm"), sys.modules.get("torchvision.models")
    if module.startswith("timm.") and timm is not None:
        return _timm_resolution(timm, entry)
    if module.startswith("torchvision.") and torchvision is not None:
        return _torchvision_resolution(torchvision, entry.target)
    return _pretrained_settings_resolution(entry) or _config_resolution(entry)


def _pretrained_settings_resolution(entry: ModelEntry) -> tuple[int, int] | None:
    """Cadene's pretrainedmodels: ``pretrained_settings[factory name][dataset]["input_size"]``
    in the factory's module (every dataset of a model shares it); for a class, the size
    every model of its module shares."""
    settings = getattr(sys.modules.get(entry.target.__module__), "pretrained_settings", None)
    if not isinstance(settings, dict):
        return None
    models = settings.values() if inspect.isclass(entry.target) else [settings.get(getattr(entry.target, "__name__", ""))]
    sizes = {_pair(s["input_size"]) for per_dataset in models if isinstance(per_dataset, dict)
             for s in per_dataset.values() if isinstance(s, dict) and "input_size" in s}
    return sizes.pop() if len(sizes) == 1 else None


def _config_resolution(entry: ModelEntry) -> tuple[int, int] | None:
    """Hugging Face: ``image_size`` of the config the model is built from (its ``config``
    argument, given by keyword or first)."""
    config = entry.kwargs.get("config", entry.args[0] if entry.args else None)
    if config is None:
        return None
    try:
        size = getattr(_made(config), "image_size", None)
    except Exception:  # the configured expression fails: the build will say so
        return None
    return _pair(size) if isinstance(size, int) or (isinstance(size, (list, tuple)) and size) else None


def _pair(size) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size[-2:])


def _timm_resolution(timm: ModuleType, entry: ModelEntry) -> tuple[int, int] | None:
    """A factory's own config; ``create_model``'s by ``model_name``; for a class, the size
    every model of its module shares. An ``img_size`` argument overrides them all."""
    if "img_size" in entry.kwargs:
        return _pair(entry.kwargs["img_size"])
    if inspect.isclass(entry.target):
        names = timm.list_models(module=entry.target.__module__.rsplit(".", 1)[-1])
    elif entry.target is timm.create_model:
        names = [entry.kwargs.get("model_name", "")]
    else:
        names = [entry.target.__name__]
    configs = (timm.models.get_pretrained_cfg(name) for name in names)
    sizes = {_pair(config.input_size) for config in configs if config is not None}
    return sizes.pop() if len(sizes) == 1 else None


def _torchvision_resolution(models: ModuleType, factory) -> tuple[int, int] | None:
    """The crop of the default weights' image-classification transforms, the resize of
    their semantic-segmentation ones (video and detection weights declare none)."""
    try:
        transforms = models.get_model_weights(factory).DEFAULT.transforms
    except (ValueError, KeyError, AttributeError):
        return None
    key = {"ImageClassification": "crop_size", "SemanticSegmentation": "resize_size"}.get(transforms.func.__name__)
    size = transforms.keywords.get(key) if key else None
    return None if size is None else _pair(size)
