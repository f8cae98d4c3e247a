"""Fixes: which literal to change (``search``), which models read it (``readers``), what the
change does to a model's interface (``interface``), and writing it (``rewrite``).

The fix policy's default lives here, light enough for the config to read without torch.
"""

# The paper's Section 5 refinements cost x1.6 (MobileNetV3-L) to x4.2 (EfficientNet-B0) FLOPs:
# a fix may cost a little more than the dearest of them, and nothing like VGG's x51.
DEFAULT_MAX_FLOPS_RATIO = 5.0
