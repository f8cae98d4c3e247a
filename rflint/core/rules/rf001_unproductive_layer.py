from __future__ import annotations

from rflint.core.diagnostics import ModelReport
from rflint.core.rules.base import Case, LayerRule


class UnproductiveLayer(LayerRule):
    """
    ## What it does
    Flags layers whose *input* already has a minimum receptive field at least as large as
    the input image, on every axis and along every path through the network
    (r_{l-1,min} >= I_res).

    ## Why is this bad?
    Such a layer cannot add spatial context: every position of its input already sees the
    whole image (or its zero padding). Its parameters and FLOPs are spent without
    extracting new features. Richter & Pal ("Receptive Field Refinement for Convolutional
    Neural Networks Reliably Improves Predictive Performance") show that models with
    unproductive layers (EfficientNet, MobileNetV3, MnasNet, ConvNeXt at 224 px) gain
    ImageNet accuracy when the receptive field is shrunk so that no layer is unproductive.

    ## Example
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.Conv2d(16, 16, 3, stride=2, padding=1),
                nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.Conv2d(16, 16, 3, padding=1),
            )
    ```
    At 32 px the last conv's input already sees 29+ pixels after three stride-2 convs and
    its own field covers the image.

    ## Use instead
    Downsample less (a stride 2 becomes 1), so the deep layers still see part of the
    image, or remove the unproductive layers and widen earlier stages.

    ## Fix safety
    The fix is reported on the model's RF003 diagnostic: a verified stride change that
    keeps every parameter shape is safe; a patch-size change is unsafe (checkpoints no
    longer load); a value that is not a literal is display-only.
    """

    code = "RF001"
    name = "unproductive-layer"
    summary = "layer's input already covers the whole image"
    fix_availability = "Sometimes"
    measure = "input r_min"
    VALID = (
        Case(
            source='''\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.Conv2d(16, 16, 3, padding=1),
        )

    def forward(self, x):
        return self.features(x)
''',
            input_res=32,
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
            nn.Conv2d(16, 16, 3, padding=1),
            nn.Conv2d(16, 16, 1),
        )

    def forward(self, x):
        return self.features(x)
''',
            input_res=32,
            expected=((13, 13),),
        ),
    )

    def flagged(self, model: ModelReport):
        return model.result.unproductive(model.input_res)
