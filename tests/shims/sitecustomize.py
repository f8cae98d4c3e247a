"""Loaded by every test subprocess (PYTHONPATH): see torchvision_ops."""

import torchvision_ops  # noqa: F401
