"""Print a JSON signature of every model under a folder: what ``--fix`` may and may not change.

``python tests/model_signatures.py PACKAGE_PARENT MODELS_FOLDER`` imports the package from
PACKAGE_PARENT (a copy of torchvision), finds each file's models as rflint does, builds each
on the meta device and runs it at 224 px. Per model: whether it built, the kernel, stride,
padding and dilation of every module that has them, and the output shapes (or the error).
"""

import importlib
import json
import os
import sys

import torch
from torch.utils._pytree import tree_leaves

from rflint.frontends.torch.build import build
from rflint.frontends.discover import find_models
from rflint.source.literals import import_root
from rflint.core.errors import one_line

LAYER_ATTRIBUTES = ("kernel_size", "stride", "padding", "dilation", "output_size")


def signature(model: torch.nn.Module) -> list:
    return [[name, type(m).__name__, *(repr(getattr(m, a, None)) for a in LAYER_ATTRIBUTES)]
            for name, m in model.named_modules() if any(hasattr(m, a) for a in LAYER_ATTRIBUTES)]


def outputs(model: torch.nn.Module) -> list | str:
    try:
        with torch.no_grad():
            result = model.eval()(torch.empty(1, 3, 224, 224, device="meta"))
    except Exception as error:
        return one_line(error)
    return [list(leaf.shape) for leaf in tree_leaves(result) if isinstance(leaf, torch.Tensor)]


def main(package_parent: str, folder: str) -> dict:
    sys.path.insert(0, package_parent)
    found = {}
    for directory, _, names in sorted(os.walk(folder)):
        for name in sorted(n for n in names if n.endswith(".py")):
            path = os.path.join(directory, name)
            _, parts = import_root(path)
            try:
                module = importlib.import_module(".".join(parts))
                with open(path) as handle:
                    entries, _ = find_models(module, path, handle.read())
            except Exception:
                continue
            built = {}
            for entry in entries:
                key = f"{os.path.relpath(path, folder)}::{entry.name}"
                try:
                    built[key] = (entry, build(entry.factory()))
                except Exception as error:
                    found[key] = {"built": False, "error": one_line(error)}
            # As rflint does: a class another model of the file is built from is a block, not a model.
            blocks = {c for entry, b in built.values() for c in b.component_types if c != entry.type_name}
            for key, (entry, b) in built.items():
                if entry.type_name not in blocks:
                    found[key] = {"built": True, "layers": signature(b.model), "outputs": outputs(b.model)}
    return found


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
