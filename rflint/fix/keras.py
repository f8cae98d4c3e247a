"""Fix trials of Keras models: the Keras front end's ``Rebuilder``.

A stride insertion point (after the pool size of ``AveragePooling2D(2)``) is no literal:
its value is given to the pool as it is built, as the rewritten
``AveragePooling2D(2, strides=1)`` would be.
"""

from __future__ import annotations

import contextlib
import linecache
import math
from typing import Iterator

from rflint.core.diagnostics import Edit
from rflint.core.layers import Site
from rflint.fix.search import Figures, Rebuilder
from rflint.frontends.keras.live import analyze_keras_model, build_keras
from rflint.source.literals import origin_of

class KerasRebuilder(Rebuilder):
    """Fix trials of a Keras model: rebuilt with the torch backend on the meta device and
    analysed from its config. A stride insertion point (after the pool size of
    ``AveragePooling2D(2)``) is no literal: its value is given to the pool as it is built,
    as the rewritten ``AveragePooling2D(2, strides=1)`` would be."""

    def __init__(self, keras):
        self.keras = keras

    def overriding(self, overrides):
        literals = {position: value for position, value in overrides.items() if not _is_insertion(position)}
        inserted = {position: value for position, value in overrides.items() if _is_insertion(position)}
        return literals, pool_strides_inserted(self.keras, inserted)

    def analyze_and_measure(self, factory, input_res, name: str, analyzed):
        """No interface figures for Keras models: a Keras fix is checked on its fields,
        FLOPs and weights, not on its output shapes."""
        model, layers, sites, _ = build_keras(factory, frozenset(analyzed), self.keras)
        result, keras_graph = analyze_keras_model(model, layers, input_res, name=name, sites=sites)
        shapes = tuple(tuple(int(n) for n in weight.shape) for weight in model.weights)  # auto names vary
        return result, Figures(keras_graph.flops, sum(math.prod(shape) for shape in shapes), tuple(enumerate(shapes)))

    def edit(self, site: Site, new: int) -> Edit:
        if site.column == site.end_column and site.line == site.end_line:
            return Edit(site.file, site.line, site.column, site.end_line, site.end_column, "", f", strides={new}")
        return super().edit(site, new)


def _is_insertion(position) -> bool:
    """An insertion point follows a literal; a literal's own position starts with a digit."""
    file, line, column = position
    text = linecache.getline(file, line)
    return not text[column - 1:column].isdigit()


@contextlib.contextmanager
def pool_strides_inserted(keras, inserted: dict) -> Iterator[None]:
    """Pools whose pool size literal ends at an insertion point get that stride."""
    if not inserted:
        yield
        return
    from keras.src.layers.pooling.base_pooling import BasePooling

    original = BasePooling.__init__

    def init(self, pool_size, strides, *args, **kwargs):
        size = pool_size[0] if isinstance(pool_size, (tuple, list)) else pool_size
        origin = origin_of(size)
        if strides is None and origin is not None:
            strides = inserted.get((origin.file, origin.end_line, origin.end_column), strides)
        original(self, pool_size, strides, *args, **kwargs)

    BasePooling.__init__ = init
    try:
        yield
    finally:
        BasePooling.__init__ = original
