"""rflint: find CNN layers whose receptive field already covers the input image.

The public API. ``rflint.analyze`` is loaded on first use so that ``import rflint`` (and a
warm, cached ``rflint`` run) never imports torch; ``rflint.Graph`` (a network declared by
hand) never imports it at all.

The package reads like the pipeline, each stage importing only the ones before it:
``core`` (graph, receptive fields, Result, rules) -> ``source`` (reading Python source) ->
``frontends`` (torch, Keras, declared graphs -> the core's graph) -> ``fix`` (search,
verification, rewriting) -> ``report`` (formats, HTML) -> ``run`` (config, files, session,
workers, cache); ``cli`` and ``server`` on top.
"""

from rflint.about import __version__
from rflint.core import result as _result

__all__ = ["analyze", "analyze_keras", "Graph", "__version__"]


class _ResultServices:
    """``Result.fixes()``, ``_repr_html_()`` and ``plot()``: later stages' code, imported on use."""

    def fixes(self, result):
        from rflint.fix.search import fixes_of

        return fixes_of(result)

    def html(self, result):
        from rflint.report.notebook import result_html

        return result_html(result)

    def plot(self, result, fixed):
        from rflint.report.notebook import plot

        return plot(result, fixed)


_result.install_services(_ResultServices())


def __getattr__(name):
    if name == "analyze":
        from rflint.frontends.torch.analysis import analyze

        return analyze
    if name == "Graph":
        from rflint.frontends.declared.graph import Graph

        return Graph
    if name == "analyze_keras":
        from rflint.frontends.keras import analyze_keras

        return analyze_keras
    raise AttributeError(f"module 'rflint' has no attribute {name!r}")
