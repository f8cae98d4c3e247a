"""Keras with the torch backend for the tests, and a one-call analysis of a built model."""

import os

os.environ["KERAS_BACKEND"] = "torch"  # before the first import of keras, as the worker does
import keras  # noqa: E402

from rflint.frontends.keras.live import analyze_keras_model, build_keras  # noqa: E402


def analyze(factory, input_res):
    """The Result of the model ``factory`` builds (on the meta device, as the linter builds it)."""
    model, layers, sites, _ = build_keras(factory, frozenset(), keras)
    return analyze_keras_model(model, layers, input_res, name="model", sites=sites)[0]


def fields(result):
    """(name, kind, kernel, stride, r_min) per layer: what the tests compare."""
    return [(layer.name, layer.kind, layer.kernel, layer.stride, layer.r_min) for layer in result.layers]
