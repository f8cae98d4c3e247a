from __future__ import annotations

from rflint.core.diagnostics import Diagnostic, ModelReport
from rflint.core.rules.base import Case, Rule, layer_site


class UnknownOp(Rule):
    """
    ## What it does
    Reports each call of an op whose spatial meaning rflint does not know (a function, a
    Tensor method, a ``torch.nn`` module, a C++ extension op, a TorchScript module) through
    which a bounded receptive field flows. rflint passes the field through it unchanged
    and guesses the layout of its output from its shape; the numbers after it may be wrong.

    ## Why is this bad?
    A linter that is silently wrong is worse than none: a custom sampling op, a gather or
    an FFT written by hand can make every later layer see far more (or less) of the image
    than rflint computes. This warning names the op at its call so the number is never
    trusted blindly.

    ## Example
    ```python
    def forward(self, x):
        return my_extension.deform_sample(self.conv(x), self.offsets(x))
    ```

    ## Use instead
    Nothing to change in the model if the op mixes no positions (silence it with
    ``# noqa: RF004`` on the reported line); otherwise report the op to rflint, or lint
    the part of the model before it.
    """

    code = "RF004"
    name = "unknown-op"
    summary = "an op rflint does not understand: the analysis may be wrong after it"
    severity = "warning"
    VALID = (
        Case(
            source='''\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x)).permute(0, 2, 3, 1)
''',
            input_res=32,
        ),
    )
    INVALID = (
        Case(
            source='''\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return torch.special.i0(self.conv(x))
''',
            input_res=32,
            expected=((11, 9),),
        ),
    )

    def check(self, model: ModelReport):
        by_site: dict[tuple, list[str]] = {}
        for op in model.result.unknown:
            site = layer_site(op, model)
            by_site.setdefault((site.file, site.line, site.column, site.end_line, site.end_column), []).append(op.op_type)
        diagnostics = []
        for (file, line, column, end_line, end_column), ops in by_site.items():
            names = ", ".join(dict.fromkeys(ops))
            calls = f" ({len(ops)} calls)" if len(ops) > 1 else ""
            diagnostics.append(Diagnostic(
                self.code, f"analysis may be wrong here: unknown op {names}{calls}", file, line, column, end_line,
                end_column, (model.name,), severity=self.severity))
        return diagnostics
