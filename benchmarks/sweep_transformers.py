"""Hugging Face transformers' vision conv models: the ``*Model`` and ``*ForImageClassification``
classes of each architecture below, built from their ``config_class()`` defaults.

    PYTHONPATH=.:tests/shims:benchmarks python benchmarks/sweep_transformers.py --auto --out benchmarks/discovery_transformers_auto.csv
"""

import os
import sys

import torchvision_ops  # noqa: F401  (this machine's torchvision needs the test shim)
import transformers

from discovery_sweep import main

ARCHITECTURES = {  # folder: class prefix
    "convnext": "ConvNext", "convnextv2": "ConvNextV2", "resnet": "ResNet", "regnet": "RegNet",
    "mobilenet_v1": "MobileNetV1", "mobilenet_v2": "MobileNetV2", "efficientnet": "EfficientNet",
    "bit": "Bit", "poolformer": "PoolFormer", "mobilevit": "MobileViT", "textnet": "TextNet",
}

if __name__ == "__main__":
    folder = os.path.join(os.path.dirname(transformers.__file__), "models")
    files = [os.path.join(folder, name, f"modeling_{name}.py") for name in ARCHITECTURES]
    expected = [f"{prefix}{suffix}" for prefix in ARCHITECTURES.values() for suffix in ("Model", "ForImageClassification")]
    sys.exit(main("transformers", files, expected))
