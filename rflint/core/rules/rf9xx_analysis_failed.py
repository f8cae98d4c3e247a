"""RF9xx: rflint could not analyze a file or a model. Emitted by the runner, documented here."""

from __future__ import annotations

from rflint.core.rules.base import Rule


class ImportFailed(Rule):
    """
    ## What it does
    Reports a file that could not be imported: a syntax error, a missing module, an
    exception or ``sys.exit()`` at import, bytes that are not UTF-8, or an import that
    exceeded ``--timeout``. For a graph file (``.json``, see ``docs/graph-format.md``):
    text that is not JSON or not UTF-8, or a field that is wrong, reported at its position.

    ## Why is this bad?
    rflint cannot see the models of a file it cannot import, so a clean run would be a
    silent false negative. The message names the exception type and text; for a graph
    file, the field (``layers[3].stride``), its layer and what is wrong with it.

    ## Use instead
    Make the file importable on its own (guard scripts with ``if __name__ == "__main__":``),
    or exclude it (``exclude`` in ``[tool.rflint]``). Fix the named field of a graph file.
    """

    code = "RF901"
    name = "import-failed"
    summary = "file could not be imported"


class BuildFailed(Rule):
    """
    ## What it does
    Reports a model whose factory or class raised while being built with no arguments
    (parameters on the meta device), or whose build exceeded ``--timeout``.

    ## Why is this bad?
    The model is not analyzed. The message names the exception type and text.

    ## Use instead
    Declare the model in ``[tool.rflint] models`` with the keyword arguments it needs.
    """

    code = "RF902"
    name = "build-failed"
    summary = "model could not be built"


class CaptureFailed(Rule):
    """
    ## What it does
    Reports a model that was built but could not be captured as a graph or run at the
    input resolution on the meta device (torch.fx and the fallback capture both failed,
    or the shapes do not fit the resolution).

    ## Why is this bad?
    The model is not analyzed. The message names the exception type and text, except
    when the forward reads tensor values (``torch.nonzero``, a boolean mask, ``.item()``,
    ``unique``): the meta device has none, and the message says so. Detection models do
    this in their post-processing, which has no receptive field.

    ## Use instead
    Check that the model runs at ``--input-res``; for a detection model, lint its backbone
    (a factory returning ``model.backbone``); report any other op that failed to rflint.
    """

    code = "RF903"
    name = "capture-failed"
    summary = "model could not be traced"


ANALYSIS_FAILURES = (ImportFailed(), BuildFailed(), CaptureFailed())
