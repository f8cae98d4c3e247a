"""rflint: find CNN layers whose receptive field already covers the input image.

``rflint.analyze`` is loaded on first use so that ``import rflint`` (and a warm, cached
``rflint`` run) never imports torch; ``rflint.Graph`` (a network declared by hand) never
imports it at all.
"""

__version__ = "0.1.0"
__all__ = ["analyze", "Graph", "__version__"]


def __getattr__(name):
    if name == "analyze":
        from .analysis import analyze

        return analyze
    if name == "Graph":
        from .declared import Graph

        return Graph
    raise AttributeError(f"module 'rflint' has no attribute {name!r}")
