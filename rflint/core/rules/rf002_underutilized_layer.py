from __future__ import annotations

from rflint.core.diagnostics import ModelReport
from rflint.core.rules.base import Case, LayerRule


class UnderutilizedLayer(LayerRule):
    """
    ## What it does
    Flags layers whose own minimum receptive field reaches the input resolution on some
    axis (r_{l,min} >= I_res) while their input does not yet cover the image: the layer
    grows its field past the image border.

    ## Why is this bad?
    Part of the layer's kernel only ever sees padding; it is the last layer that can still
    add context, and every layer after it will be unproductive (RF001). It marks where the
    network's downsampling outruns the image size.

    ## Example
    ```python
    self.features = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.Conv2d(16, 16, 3, stride=2, padding=1),
        nn.Conv2d(16, 16, 3, stride=2, padding=1),
        nn.Conv2d(16, 16, 3, padding=1),   # r_min = 31 >= 28
    )
    ```

    ## Use instead
    Reduce the downsampling before this layer (stride 2 -> 1), or train at a higher
    input resolution.

    ## Fix safety
    See RF003: the fix changes a stride literal (safe when parameter shapes are unchanged)
    or a patch size (unsafe).
    """

    code = "RF002"
    name = "underutilized-layer"
    summary = "layer's receptive field grows past the image border"
    fix_availability = "Sometimes"
    measure = "r_min"
    VALID = (
        Case(
            source='''\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.Conv2d(16, 16, 3, padding=1))

    def forward(self, x):
        return self.features(x)
''',
            input_res=28,
        ),
    )
    INVALID = (
        Case(
            source='''\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.Conv2d(16, 16, 3, stride=2, padding=1),
            nn.Conv2d(16, 16, 3, stride=2, padding=1),
            nn.Conv2d(16, 16, 3, padding=1),
        )

    def forward(self, x):
        return self.features(x)
''',
            input_res=28,
            expected=((11, 13),),
        ),
    )

    def flagged(self, model: ModelReport):
        return model.result.underutilized(model.input_res)
