"""The eager fallback of capture: record a model's ops while it runs on meta tensors.

torch.fx cannot trace a ``forward`` that branches or loops on shapes (``if x.shape[-1] >
100``, ``len(x)``, ``for i in range(x.size(1))``). Running the model itself on a meta input
has no such limit. A TorchFunctionMode sees every torch function and Tensor method as it
is called and links its output tensors to the nodes that produced its input tensors;
global forward hooks make each leaf module (``capture.is_leaf``) one node, with the ops
inside it unrecorded, exactly as the fx tracer stops at it. Both captures classify with
the same functions and give the same ``GraphNode`` list.
"""

from __future__ import annotations

import operator
import sys
from typing import Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from rflint.about import PACKAGE_DIR
from rflint.frontends.torch.flops import counted_inside
from rflint.frontends.torch.capture import Recording, is_leaf, is_torch_file, known_output, line_site, tensors
from rflint.core.graph import LayerGraph
from rflint.core.layers import Site


def _canonical(func):
    """The ``operator`` function fx records for a Tensor dunder method (``x[i]`` is getitem)."""
    name = getattr(func, "__name__", "")
    if name.startswith("__") and name.endswith("__"):
        return getattr(operator, name[2:-2], func)
    return func


def _caller_site() -> Site | None:
    """The line of the innermost frame outside torch and rflint, as the fx capture reports it."""
    frame = sys._getframe(2)
    while frame is not None and (is_torch_file(frame.f_code.co_filename) or frame.f_code.co_filename.startswith(PACKAGE_DIR)):
        frame = frame.f_back
    return None if frame is None else line_site(frame.f_code.co_filename, frame.f_lineno)


class _Recorder(TorchFunctionMode):
    """Sees every torch function and Tensor method as it is called and records it.

    An in-place op returns its input, so its node becomes that tensor's producer and later
    readers see the update; ``x[i] = y`` returns nothing and updates ``x`` the same way.
    """

    def __init__(self, model: nn.Module, ndim: int):
        super().__init__()
        self.recording = Recording(ndim)
        self.paths = {id(m): path for path, m in model.named_modules()}
        self.leaf_depth = 0  # > 0 inside a leaf module: its inner ops are not recorded
        self.counting: FlopCounterMode | None = None  # inside a leaf whose FLOPs no formula gives (``flops.py``)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = _canonical(func)
        result = known_output(target, args, kwargs)
        if result is None:
            result = func(*args, **kwargs)
        outputs = args[0] if target is operator.setitem else result
        if self.leaf_depth or not tensors(outputs):
            return result
        self.recording.add_function(target, args, kwargs, outputs, _caller_site())
        return result

    def enter_module(self, module: nn.Module, args) -> None:
        if is_leaf(module):
            if not self.leaf_depth and counted_inside("call_module", module):
                self.counting = FlopCounterMode(display=False).__enter__()
            self.leaf_depth += 1

    def exit_module(self, module: nn.Module, args, kwargs, result) -> None:
        """Record an outermost leaf; classifying it runs torch code, still inside the leaf."""
        if not is_leaf(module):
            return
        if self.leaf_depth == 1:
            self.stop_counting()
            self.recording.add_module(self.paths.get(id(module)), module, args, kwargs, result)
        self.leaf_depth -= 1

    def stop_counting(self) -> None:
        """Add up what FlopCounterMode counted inside a leaf (also when its forward raised)."""
        if self.counting is not None:
            self.counting.__exit__(None, None, None)
            self.recording.flops += self.counting.get_total_flops()
            self.counting = None


def capture_eager(model: nn.Module, input_res: Sequence[int], channels: int) -> LayerGraph:
    """Run ``model`` once on a meta input of size ``input_res`` and record its ops."""
    ndim = len(input_res)
    recorder = _Recorder(model, ndim)
    x = torch.empty(1, channels, *input_res, device="meta")
    recorder.recording.add_input("input", x)
    pre = nn.modules.module.register_module_forward_pre_hook(recorder.enter_module)
    post = nn.modules.module.register_module_forward_hook(recorder.exit_module, with_kwargs=True)
    try:
        with torch.no_grad(), recorder.recording.noting_progress(), recorder:
            output = model(x)
    finally:
        recorder.stop_counting()
        pre.remove()
        post.remove()
    return recorder.recording.graph(output, "eager")
