"""Test-only: make the CUDA torchvision wheel importable against the CPU torch build.

torchvision's compiled ops fail to load here, and ``import torchvision`` then raises
"operator torchvision::nms does not exist". Defining the two op schemas first is enough
(the model code is pure Python). Tests put this folder on PYTHONPATH so rflint's own
worker processes get it too; rflint itself never does this.
"""

import sys


class _DefineTorchvisionOps:  # a meta path finder (no importlib.abc: every test subprocess imports this)
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision":
            sys.meta_path.remove(self)
            import torch

            global _library
            _library = torch.library.Library("torchvision", "DEF")
            _library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        return None


sys.meta_path.insert(0, _DefineTorchvisionOps())
