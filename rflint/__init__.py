"""rflint: find CNN layers whose receptive field already covers the input image."""

__version__ = "0.1.0"
