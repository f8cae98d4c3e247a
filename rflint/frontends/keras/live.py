"""Keras source files: import with literal provenance, find the models, build them on the
meta device with the torch backend, and analyse their functional graph.

Only a worker that meets a file importing keras imports it (about 3 s of CPU), so torch
files never pay for it. The model's config (``to_json()``) goes through the same reader as
a saved model; the live layers add where each was constructed and where its stride and
kernel literals were written, so fixes go through the same search and rewrite as torch.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import json
import os
import sys
from typing import Callable, Iterator

from rflint.core.graph import analyze_graph
from rflint.core.diagnostics import ModelReport
from rflint.source.literals import origin_of
from rflint.core.layers import Site
from rflint.core.result import Result
from rflint.source.syntax import parsed
from rflint.core.errors import one_line
from rflint.frontends.keras.config_graph import KerasConfigError, KerasGraph, LayerLiterals, graph_from_config

BACKEND = "torch"
TF_KERAS_ADVICE = ("uses tf.keras, which needs TensorFlow (not installed): lint a saved model instead "
                   "(model.save('model.keras') or open('model.json', 'w').write(model.to_json()) where TensorFlow runs)")


def imports_keras(source: str) -> bool:
    """Whether a file imports keras (or tf.keras), so the Keras front end must read it.
    A file that never spells the word is not parsed (most are not; a parse and a walk of
    every torchvision model file cost 1 s)."""
    if "keras" not in source:
        return False
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError):
        return False
    return bool(_keras_imports(tree))


def _keras_imports(tree: ast.AST) -> set[str]:
    """'keras' for Keras 3 imports, 'tf.keras' for TensorFlow's Keras."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name == "keras" or name.startswith("keras."):
                found.add("keras")
            elif name.startswith(("tensorflow.keras", "tensorflow.python.keras")) or name == "tf_keras":
                found.add("tf.keras")
        if isinstance(node, ast.Attribute) and node.attr == "keras" and isinstance(node.value, ast.Name) \
                and node.value.id in ("tf", "tensorflow"):
            found.add("tf.keras")
    return found


def import_keras():
    """keras with the torch backend (forced: rflint builds on torch's meta device)."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = BACKEND
    import keras

    if keras.backend.backend() != BACKEND:
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()} backend; rflint needs torch")
    return keras


def keras_for(file: str, source: str):
    """keras, imported for a file that imports it: tf.keras without TensorFlow is an
    ImportError with the advice to lint a saved model instead."""
    if "tf.keras" in _keras_imports(parsed(source)) and importlib.util.find_spec("tensorflow") is None:
        raise ImportError(TF_KERAS_ADVICE)
    keras = import_keras()
    _forget_uninstrumented(file)
    return keras


def _forget_uninstrumented(file: str) -> None:
    """keras's own modules (``keras/src/applications/mobilenet.py`` linted as a user's file)
    were imported with keras, without literal provenance: the worker must import them anew."""
    from rflint.source.literals import TABLE_NAME

    path = os.path.abspath(file)
    for name, module in list(sys.modules.items()):
        if os.path.abspath(getattr(module, "__file__", None) or "") == path and not hasattr(module, TABLE_NAME):
            del sys.modules[name]


# -- discovery ---------------------------------------------------------------------------

def find_keras_models(module, file: str, source: str, keras) -> tuple[list, list[str]]:
    """Discovery's rules (annotated or inferred factories, model classes buildable without
    arguments) with ``keras.Model`` as the model class and ``call`` as its forward. A
    ``keras.Model`` subclass without a ``call`` of its own builds a functional graph: it is
    a model (the base ``call`` raises NotImplementedError, but a functional model never runs it)."""
    from rflint.frontends.discover import Framework, find_models

    def is_model_class(value) -> bool:
        return inspect.isclass(value) and issubclass(value, keras.Model)

    framework = Framework(is_model_class, "call", keras.Model.call, inherited_forward_is_model=True)
    return find_models(module, file, source, framework)


# -- build and analyse -------------------------------------------------------------------

@contextlib.contextmanager
def fresh_names(keras) -> Iterator[None]:
    """Layer names restart at ``conv2d`` for every build, so diagnostics do not depend on
    what the worker built before."""
    keras.backend.clear_session()
    yield


def build_keras(factory: Callable, analyzed: frozenset[str], keras):
    """Build on the meta device (weights take no memory), recording construction sites;
    a model that cannot be built there is built for real on the CPU."""
    from rflint.frontends.torch.build import recording_sites, type_names

    for device in ("meta", "cpu"):
        try:
            with fresh_names(keras), recording_sites(analyzed) as records, keras.device(device):
                model = factory()
            break
        except Exception:
            if device == "cpu":
                raise
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    layers = dict(named_layers(model, ""))
    sites = {path: records[id(layer)][1] for path, layer in layers.items() if records.get(id(layer), (0, ()))[1]}
    kinds = type_names({type(layer) for layer in layers.values()} | {type(model)})
    return model, layers, sites, kinds


def named_layers(model, prefix: str):
    for layer in model.layers:
        path = prefix + layer.name
        yield path, layer
        if hasattr(layer, "layers") and hasattr(layer, "to_json"):  # a nested model
            yield from named_layers(layer, path + "/")


def model_config(model) -> dict:
    """The model's config in the saved format (``to_json``): the same reader as a saved file.

    A ``keras.Model`` subclass whose constructor builds a functional graph serializes only
    its name (Keras cannot re-create it from a config); its graph is read all the same.
    """
    from keras.src.models import functional, sequential

    if not isinstance(model, (functional.Functional, sequential.Sequential)):
        raise KerasConfigError(f"{type(model).__name__} is a subclassed keras.Model with its own call(): rflint reads "
                               "functional and Sequential models (keras.Model(inputs, outputs))")
    original = functional.functional_like_constructor
    functional.functional_like_constructor = lambda cls: True
    try:
        config = json.loads(model.to_json())
    except Exception as error:
        raise KerasConfigError(f"cannot read the model's graph: {one_line(error)}") from error
    finally:
        functional.functional_like_constructor = original
    return config


def analyze_keras_model(model, layers: dict, input_res, *, name: str, sites=None, **result_fields) -> tuple[Result, KerasGraph]:
    """The Result of a built Keras model at ``input_res``, with literal sites from its layers."""
    config = model_config(model)
    sites = sites or {}
    keras_graph = graph_from_config(config, input_res,
                                    literals=lambda path: layer_literals(layers.get(path), sites.get(path, ())))
    result = analyze_graph(keras_graph.graph, keras_graph.input_res, name=name, sites=sites, **result_fields)
    return result, keras_graph


def layer_literals(layer, constructed: tuple[Site, ...]) -> LayerLiterals | None:
    """Where the layer's strides and kernel were written, per layer axis. A pool whose
    strides come from its pool size (``AveragePooling2D(2)``) has its stride "literal" at
    the point after the pool size where ``, strides=`` can be inserted, and no kernel
    literal (changing the pool size is not the fix)."""
    if layer is None:
        return None
    strides = tuple(getattr(layer, "strides", ()) or ())
    kernels = tuple(getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None) or ())
    if not strides:
        return None
    if hasattr(layer, "pool_size") and strides_from_pool_size(layer):
        point = insertion_point(layer, constructed)
        return LayerLiterals((point,) * len(strides), ())
    return LayerLiterals(tuple(_site(origin_of(s)) for s in strides), tuple(_site(origin_of(k)) for k in kernels))


def strides_from_pool_size(layer) -> bool:
    """The pool's strides are its pool size's own literals (no ``strides`` argument given)."""
    return all(s is p for s, p in zip(layer.strides, layer.pool_size)) and origin_of(layer.strides[0]) is not None


def insertion_point(layer, constructed: tuple[Site, ...]) -> Site | None:
    """Right after the pool size literal, when it is one literal written inside the
    layer's own construction call: ``AveragePooling2D(2)`` -> ``AveragePooling2D(2, strides=1)``."""
    origins = {origin_of(p) for p in layer.pool_size}
    if len(origins) != 1:
        return None
    origin = origins.pop()
    call = constructed[0] if constructed else None
    if call is None or call.file != origin.file or not _inside(origin, call):
        return None
    return Site(origin.file, origin.end_line, origin.end_column, origin.end_line, origin.end_column)


def _inside(origin, call: Site) -> bool:
    return (call.line, call.column) <= (origin.line, origin.column) and \
        (origin.end_line, origin.end_column) <= (call.end_line, call.end_column)


def _site(origin) -> Site | None:
    return None if origin is None else Site(origin.file, origin.line, origin.column, origin.end_line, origin.end_column)


def analyze_keras_entry(entry, job, keras) -> ModelReport:
    """Build and analyse one Keras model; a failure becomes the model's error."""
    from rflint.frontends.torch.analysis import _definition_site

    input_res, source = job.resolution_for(entry)
    shown = (input_res, input_res) if isinstance(input_res, int) else input_res
    report = ModelReport(entry.name, entry.file, entry.line, entry.column, shown, entry.kind,
                         type_name=entry.type_name, input_res_source=source)
    try:
        model, layers, sites, kinds = build_keras(entry.factory(), job.analyzed, keras)
    except (Exception, SystemExit) as error:
        report.status, report.error = "error", f"RF902: cannot build: {one_line(error)}"
        return report
    report.component_types = kinds
    if job.input_res_auto and source == "option":
        declared = declared_input(model)
        if declared:
            input_res, report.input_res_source = declared, "model"
    try:
        result, _ = analyze_keras_model(model, layers, input_res, name=entry.name, sites=sites, build="meta",
                                        component_types=kinds, source=_definition_site(entry.target))
    except KerasConfigError as error:
        report.status, report.error = "error", f"RF903: cannot trace: {error}"
        return report
    report.result, report.input_res = result, result.input_res
    return report


def declared_input(model) -> tuple[int, ...] | None:
    """The model's fixed input size (``keras.Input((224, 224, 3))``), for ``--input-res auto``."""
    from rflint.frontends.keras.saved import declared_resolution

    try:
        return declared_resolution(json.loads(model.to_json()))
    except Exception:
        return None
