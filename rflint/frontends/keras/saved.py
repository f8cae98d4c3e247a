"""Saved Keras models, read without any framework: ``.keras`` archives (a zip whose
``config.json`` is the model's config), ``model.to_json()`` files and bare ``config.json``
files, in the Keras 3 and the Keras 2 formats.

There is no source to fix, so diagnostics name the layer; in a JSON file they point at the
line where the layer's name is written.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import zipfile

from rflint.core.graph import analyze_graph
from rflint.core.diagnostics import FileReport, ModelReport
from rflint.core.layers import Site
from rflint.core.result import Result
from rflint.frontends.keras.config_graph import KerasConfigError, all_layers, batch_shape, graph_from_config, input_spec, is_model, layer_name, model_layers

KERAS_SUFFIXES = (".keras",)
JSON_SUFFIXES = (".json",)


def read_keras_config(path: str) -> dict:
    """The model config of a saved Keras model (the ``class_name``/``config`` dict).

    Raises KerasConfigError with a one-line reason for a file that is not one.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "config.json" not in archive.namelist():
                    raise KerasConfigError("a zip archive without config.json is not a .keras model")
                data = json.loads(archive.read("config.json"))
        else:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, zipfile.BadZipFile) as error:
        raise KerasConfigError(f"cannot read a Keras model: {error}") from error
    config = keras_model_config(plain(data))
    if config is None:
        raise KerasConfigError("not a Keras model: no 'class_name' and 'config' at the top level")
    return config


def plain(value):
    """TensorFlow's SavedModel metadata spells tuples and shapes as ``{"class_name":
    "__tuple__" or "TensorShape", "items": [...]}``; everything else spells them as lists."""
    if isinstance(value, dict):
        if value.get("class_name") in ("__tuple__", "TensorShape") and "items" in value:
            return [plain(v) for v in value["items"]]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def keras_model_config(data) -> dict | None:
    """The model config inside parsed JSON, or None if it holds none: a ``to_json()`` or
    ``config.json`` object is the config itself; TensorFlow.js wraps it in ``modelTopology``
    (and old ``.h5``-derived files in ``model_config``)."""
    if not isinstance(data, dict):
        return None
    for key in ("modelTopology", "model_config"):
        if isinstance(data.get(key), dict):
            data = data[key].get("model_config", data[key])
    if "class_name" in data and "config" in data and isinstance(data["config"], (dict, list)):
        return data
    return None


def is_keras_json(path: str) -> bool:
    """A JSON file that holds a Keras model config (decided by its content)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return keras_model_config(json.load(handle)) is not None
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def is_saved_keras_model(path) -> bool:
    """A ``.keras`` archive, or a JSON file holding a Keras model config."""
    path = str(path)
    return path.endswith(KERAS_SUFFIXES) or (path.endswith(JSON_SUFFIXES) and is_keras_json(path))


def suppressed(diagnostic, lines) -> bool:
    """A saved model holds no noqa comments: only ``--ignore`` and per-file ignores apply."""
    return False


def declared_resolution(config: dict) -> tuple[int, ...] | None:
    """The spatial size of the model's input layer, if it is fixed (``--input-res auto``)."""
    ndim, channels_last = input_spec(config)
    shape = next((batch_shape(l) for l in all_layers(config) if batch_shape(l)), None)
    if shape is None or len(shape) != ndim + 2:
        return None
    spatial = shape[1:-1] if channels_last else shape[2:]
    return tuple(int(n) for n in spatial) if all(n is not None for n in spatial) else None


def layer_lines(path: str, config: dict) -> dict[str, Site]:
    """Where each layer's name is written in a JSON file, in the order the config lists
    layers (nested models' layers as ``outer/inner``); empty for an archive."""
    if path.endswith(KERAS_SUFFIXES) or zipfile.is_zipfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    sites: dict[str, Site] = {}
    position = 0

    def visit(model: dict, prefix: str) -> None:
        nonlocal position
        for layer in model_layers(model):
            name = layer_name(layer)
            found = re.compile(r'"name"\s*:\s*' + re.escape(json.dumps(name))).search(text, position)
            if found:
                position = found.end()
                line = bisect.bisect_right(starts, found.start())
                column = found.start() - starts[line - 1] + 1
                sites[prefix + name] = Site(path, line, column, line, column + len(found.group()))
            if is_model(layer):
                visit(layer, prefix + name + "/")

    visit(config, "")
    return sites


def analyze_saved(path: str, input_res) -> Result:
    """The Result of a saved Keras model at ``input_res`` (an int applies to every axis)."""
    config = read_keras_config(path)
    return analyze_config(config, input_res, path)


def analyze_config(config: dict, input_res, path: str) -> Result:
    keras_graph = graph_from_config(config, input_res)
    lines = layer_lines(path, config)
    nodes = keras_graph.graph.nodes
    for node in nodes:
        node.called_at = lines.get(node.module_path) if node.module_path else None
    return analyze_graph(keras_graph.graph, keras_graph.input_res, name=model_name(config, path), build="saved",
                         source=Site(os.path.abspath(path), 1, 1, 1, 1))


def model_name(config: dict, path: str) -> str:
    config_name = (config.get("config") or {}).get("name") if isinstance(config.get("config"), dict) else None
    return config_name or os.path.splitext(os.path.basename(path))[0]


def lint_saved_model(file: str, job) -> FileReport:
    """One saved model: a FileReport with its analysis, or one RF903 line naming why not."""
    report = FileReport(file)
    try:
        config = read_keras_config(file)
    except KerasConfigError as error:
        from rflint.core.diagnostics import failure

        report.diagnostics.append(failure("RF901", file, 1, 1, f"cannot read: {error}"))
        return report
    name = model_name(config, file)
    declared = declared_resolution(config) if job.input_res_auto else None
    input_res, source = (declared, "model") if declared else (job.input_res, "option")
    shown = (input_res, input_res) if isinstance(input_res, int) else tuple(input_res)
    model = ModelReport(name, file, 1, 1, shown, "saved", input_res_source=source)
    try:
        model.result = analyze_config(config, input_res, file)
        model.input_res = model.result.input_res
        model.keep_reported_layers()
    except KerasConfigError as error:
        model.status, model.error = "error", f"RF903: cannot analyze: {error}"
    report.models.append(model)
    return report
