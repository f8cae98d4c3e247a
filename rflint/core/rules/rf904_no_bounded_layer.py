from __future__ import annotations

from rflint.core.diagnostics import Diagnostic, ModelReport
from rflint.core.rules.base import Case, Rule, fmt_size, layer_site


class NoBoundedLayer(Rule):
    """
    ## What it does
    Reports a model that has convolutions or pools but no layer with a bounded receptive
    field, naming the op after which every field sees the whole input.

    ## Why is this bad?
    rflint cannot judge such a model: with no bounded layer, I_min is undefined, and
    calling it "fully utilized" would be a silent false negative. Usually an op is read as
    mixing the whole image (a reshape that flattens space, a global op before the first
    conv), rightly or not.

    ## Example
    ```python
    def forward(self, x):
        return self.conv(self.global_pool(x))   # every field is the whole image
    ```

    ## Use instead
    If the op really sees the whole image, the model has no spatial hierarchy to lint:
    exclude it. Otherwise report the op to rflint.
    """

    code = "RF904"
    name = "no-bounded-layer"
    summary = "no layer has a bounded receptive field: the model cannot be judged"
    VALID = (
        Case(
            source='''\
from torch import nn


def net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 1))
''',
            input_res=32,
        ),
    )
    INVALID = (
        Case(
            source='''\
from torch import nn


def net() -> nn.Module:
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Conv2d(3, 8, 1),
    )
''',
            input_res=32,
            expected=((6, 9),),
        ),
    )

    def check(self, model: ModelReport):
        culprit = model.result.unbounded_by
        if culprit is None:
            return []
        site = layer_site(culprit, model)
        message = (f"no layer has a bounded receptive field at {fmt_size(model.input_res)}: every field is the "
                   f"whole input after {culprit.name} ({culprit.op_type}); rflint cannot judge this model")
        return [Diagnostic(self.code, message, site.file, site.line, site.column, site.end_line, site.end_column,
                           (model.name,), severity=self.severity)]
