from __future__ import annotations

from rflint.core.diagnostics import Diagnostic, ModelReport
from rflint.core.rules.base import Case, Rule, fmt_size, model_site


class NotFullyUtilized(Rule):
    """
    ## What it does
    Flags a model whose I_min, the largest minimum receptive field of any layer, is at
    least its input resolution on some axis: the model is not *fully utilized*.

    ## Why is this bad?
    Some layers of the model cannot contribute spatial context (see RF001 and RF002).
    Richter & Pal measured that one changed stride (2 -> 1) or a smaller patchify stem
    (4x4 -> 2x2), which brings I_min below the input resolution, raised ImageNet top-1
    accuracy of every model they tried (MobileNetV3-large 77.1% -> 78.5%).

    ## Example
    ```python
    def mobilenet_v3_large(**kwargs) -> MobileNetV3:  # I_min = 263 >= 224
        ...
    ```

    ## Use instead
    Apply the fix rflint proposes: the latest downsampling literal that brings I_min below
    I_res while keeping it as close to I_res as possible (`rflint --fix`), or remove the
    unproductive layers and widen the earlier stages.

    ## Fix safety
    rflint rebuilds the model with the changed literal in memory, re-traces it on the meta
    device and runs it at the input resolution before proposing a fix. The change must work
    for every model that reads the literal, in its file and in the project's files that
    import it; its outputs must keep their shapes (only spatial dimensions may grow) and a
    global pool must stay global. A stride change that keeps every parameter shape is
    **safe** (checkpoints still load). A patch-size change (kernel and stride together)
    changes weight shapes and is **unsafe**: apply it with `--fix --unsafe-fixes`.
    **Display-only** advice is never applied: a value that does not come from a literal in
    an analyzed file, and a change that would also change a model without an RF003 or
    multiply FLOPs by more than `max-flops-ratio` (default 5), shown with its edit and why.
    """

    code = "RF003"
    name = "not-fully-utilized"
    summary = "model's I_min reaches its input resolution"
    fix_availability = "Sometimes"
    VALID = (
        Case(
            source='''\
from torch import nn


def small_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3, padding=1))
''',
            input_res=32,
        ),
    )
    INVALID = (
        Case(
            source='''\
from torch import nn


def small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.Conv2d(8, 8, 3, padding=1),
    )
''',
            input_res=12,
            expected=((4, 1),),
            fixed='''\
from torch import nn


def small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.Conv2d(8, 8, 3, stride=1, padding=1),
        nn.Conv2d(8, 8, 3, padding=1),
    )
''',
        ),
    )

    def check(self, model: ModelReport):
        result = model.result
        if not result.judged or result.fully_utilized(model.input_res):
            return []  # a model that cannot be judged is RF904's
        site = model_site(model)
        unproductive = len(result.unproductive(model.input_res))
        underutilized = len(result.underutilized(model.input_res))
        message = (
            f"model is not fully utilized: I_min={fmt_size(result.i_min)} >= I_res={fmt_size(model.input_res)}"
            f" ({unproductive} unproductive, {underutilized} underutilized layers)"
        )
        best, *alternatives = model.fixes or (None,)
        return [
            Diagnostic(self.code, message, site.file, site.line, site.column, site.end_line,
                       site.end_column, (model.name,), severity=self.severity, fix=best,
                       alternatives=tuple(alternatives), fix_note=None if best else model.fix_note)
        ]
