"""Stage 3 (build): construction sites, eval mode and definition lines, each checked
against the plain reading (``inspect``, ``Module.eval``) it replaces for speed."""

import importlib.util
import inspect
import sys

import pytest
import torchvision
from torch import nn

from rflint.frontends.torch.analysis import _definition_site
from rflint.frontends.torch.build import build, in_eval_mode

MODEL_FILE = '''\
from torch import nn


def conv(channels):
    return nn.Conv2d(channels, channels, 3)  # line 5


class Tree(nn.Module):
    def __init__(self, depth=2):
        super().__init__()
        self.leaf = nn.Conv2d(4, 4, 1)  # line 11
        self.child = Tree(depth - 1) if depth else None  # line 12


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = conv(4)  # line 18
        self.second = nn.Conv2d(4, 4, 3)  # line 19
        self.third = nn.Conv2d(4, 4, 3)  # line 20
        self.repeated = nn.ModuleList()  # line 21
        for _ in range(3):
            self.repeated.append(conv(4))  # line 23
        self.tree = Tree()  # line 24


def make():
    return Net()  # line 28


def decorated(cls):
    return cls


def outer():
    @decorated
    class Inner(nn.Module):
        pass

    return Inner
'''


def load(directory, name="sites_model"):
    path = directory / f"{name}.py"
    path.write_text(MODEL_FILE)
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(path), module


@pytest.fixture
def model_file(tmp_path):
    yield load(tmp_path)
    sys.modules.pop("sites_model", None)


def lines(built, path):
    return [site.line for site in built.sites.get(path, ())]


def test_construction_sites_are_the_calls_that_built_each_module(model_file):
    file, module = model_file
    built = build(module.make, [file])
    assert lines(built, "") == [28]
    assert lines(built, "first") == [5, 18, 28]  # the helper's line, then the lines that called it
    assert lines(built, "second") == [19, 28] and lines(built, "third") == [20, 28]
    assert [lines(built, f"repeated.{i}") for i in range(3)] == [[5, 23, 28]] * 3
    assert lines(built, "repeated") == [21, 28]
    # A module built by a constructor of its own class is located at that constructor's line.
    assert lines(built, "tree") == [24, 28]
    assert lines(built, "tree.child") == [12, 24, 28]
    assert lines(built, "tree.child.child") == [12, 12, 24, 28]
    assert lines(built, "tree.child.leaf") == [11, 12, 24, 28]


def test_frames_outside_build_are_not_construction_sites(model_file):
    """This test's own frames call build(): they built nothing."""
    file, module = model_file
    built = build(module.make, [file, __file__])
    assert {site.file for sites in built.sites.values() for site in sites} == {file}


def test_copies_of_a_model_file_point_at_their_own_file(tmp_path, model_file):
    """Their code objects compare equal (co_filename is not compared)."""
    copy = tmp_path / "copy"
    copy.mkdir()
    copy_file, copy_module = load(copy, "sites_model_copy")
    for file, module in (model_file, (copy_file, copy_module)):
        built = build(module.make, [file])
        assert {site.file for sites in built.sites.values() for site in sites} == {file}
    sys.modules.pop("sites_model_copy")


def test_eval_mode_honours_a_custom_train():
    calls = []

    class FrozenNorm(nn.BatchNorm2d):
        def train(self, mode=True):
            calls.append(mode)
            return super().train(mode)

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(FrozenNorm(4), nn.ReLU()), nn.Identity())
    assert in_eval_mode(model) is model
    assert calls == [False]
    assert not any(m.training for m in model.modules())


def test_definition_lines_are_the_keyword_lines(model_file):
    """The def/class keyword, where the linter reports RF003: inspect's line for an
    undecorated definition, the line after the decorators for a decorated one."""
    _, module = model_file
    targets = [module.make, module.Net, module.Tree, module.decorated,
               torchvision.models.ResNet, torchvision.models.efficientnet.MBConv]
    for target in targets:
        site = _definition_site(target)
        assert site and site.line == inspect.getsourcelines(inspect.unwrap(target))[1], target
    inner = _definition_site(module.outer())
    assert (inner.line, inner.column) == (37, 5)  # "class Inner", not "@decorated" on line 36
    resnet50 = _definition_site(torchvision.models.resnet50)  # under @register_model() and @handle_legacy_interface
    source = inspect.getsourcelines(inspect.unwrap(torchvision.models.resnet50))
    assert source[0][resnet50.line - source[1]].startswith("def resnet50(")
