"""Discovery: which functions and classes of a file are models, without running the rest."""

import inspect
import sys
import textwrap
import typing

import pytest
import torch
from torch import nn

from helpers import rflint
from rflint.run.config import model_entry
from rflint.frontends.discover import ModelEntry, NotAModel, analyze_model, class_skip_reason, declared_resolution, find_models, no_argument_kwargs, no_weights_value, with_configured
from rflint.source.infer import program_reason, returns_model
from rflint.source.literals import import_file


def write(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def discover(path, configured=()):
    module = import_file(str(path), frozenset({str(path)}))
    entries, skipped = find_models(module, str(path), path.read_text())
    return with_configured(entries, module, str(path), path.read_text(), configured, skipped), skipped


NET = """\
    from torch import nn


    class Net(nn.Module):
        def __init__(self, depth):
            super().__init__()
            self.body = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=2, padding=1) for i in range(depth)])

        def forward(self, x):
            return self.body(x)
"""


def test_programs_are_never_called_but_factories_are(tmp_path):
    """main(), train() and a function building its model from argparse input all return a
    model in their source; none is called (each would leave a file behind)."""
    write(tmp_path, "net.py", NET)
    write(tmp_path, "project.py", """\
        import argparse
        from pathlib import Path

        from net import Net

        HERE = Path(__file__).parent


        def main():
            (HERE / "main_ran").write_text("yes")
            return Net(2)


        def train():
            (HERE / "train_ran").write_text("yes")
            model = Net(2)
            return model


        def from_command_line():
            (HERE / "argparse_ran").write_text("yes")
            args = argparse.ArgumentParser().parse_args()
            return Net(args.depth)


        def helper():
            (HERE / "helper_ran").write_text("yes")
            return 3


        def _build(depth):
            return Net(depth)


        def small(pretrained=False):
            model = _build(3)
            return model.eval()
        """)
    run = rflint("project.py", "--input-res", "64", "--no-cache", "--verbose", cwd=tmp_path)
    assert "Traceback" not in run.stderr, run.stderr
    assert not [p.name for p in tmp_path.glob("*_ran")]
    assert "project.py: skipped main: never called: 'main' is the name of a program" in run.stderr
    assert "project.py: skipped train: never called: 'train' is the name of a program" in run.stderr
    assert "project.py: skipped from_command_line: never called: it calls parse_args()" in run.stderr
    assert "project.py: skipped helper: not shown to return a model, so never called" in run.stderr
    assert "project.py: small analyzed at 64x64" in run.stderr
    assert "1 model analyzed, 4 skipped (--verbose says why)." in run.stdout


class Block(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)

    def forward(self, x):
        return self.conv(x)


def _opaque():
    return 7


def _indirect(width):
    block = Block(width)
    return block


ModelT = typing.TypeVar("ModelT", bound=nn.Module)


def _generic(kind: type) -> ModelT:  # timm's build_model_with_cfg: a TypeVar bound to nn.Module
    return kind()


def _recursive(n):
    return _recursive(n - 1) if n else 0


def _class():
    return Block()


def _library_class():
    return nn.Sequential(nn.Conv2d(3, 8, 3))


def _helper():
    return _indirect(4)


def _helper_eval():
    model = _indirect(4)
    return model.eval()


def _if_else():
    return Block() if _opaque() else nn.Identity()


def _typevar():
    return _generic(Block)


def _list():
    return [Block()]


def _tensor():
    return torch.zeros(1)


@pytest.mark.parametrize(
    "function, expected",
    [(_class, True), (_library_class, True), (_helper, True), (_helper_eval, True), (_if_else, True),
     (_typevar, True), (_opaque, False), (_recursive, False), (_list, False), (_tensor, False)],
)
def test_returns_model_from_source(function, expected):
    assert returns_model(function, lambda value: inspect.isclass(value) and issubclass(value, nn.Module)) is expected


def test_returns_model_asks_the_front_ends_predicate():
    """The same source is a model factory or not depending on what the front end calls a model class."""
    assert not returns_model(_class, lambda value: False)


def test_program_signals():
    def fit_loop():
        model = Block()
        model(torch.zeros(1)).sum().backward()
        return model

    def reads_argv():
        return Block(int(sys.argv[1]))

    assert "backward()" in program_reason(fit_loop)
    assert program_reason(reads_argv) == "it reads sys.argv"
    assert program_reason(_indirect) is None


def test_factories_found_across_modules_of_a_package(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    write(package, "__init__.py", "")
    write(package, "layers.py", NET)
    write(package, "builders.py", """\
        from .layers import Net


        def create(depth, variant, pretrained=False):
            model = Net(depth)
            return model
        """)
    path = write(package, "zoo.py", """\
        from .builders import create


        def net_small(pretrained=False, **kwargs):
            return create(2, "small", pretrained=pretrained, **kwargs)


        def net_large(pretrained='imagenet'):
            model = create(5, "large", pretrained)
            return model
        """)
    sys.path.insert(0, str(tmp_path))
    try:
        entries, skipped = discover(path)
    finally:
        sys.path.remove(str(tmp_path))
    assert [(e.name, e.kwargs) for e in entries] == [("net_small", {"pretrained": False}), ("net_large", {"pretrained": None})]


def test_registry_entries_are_factories(tmp_path):
    """timm's register_model lists a factory whose source shows nothing (a lookup by name)."""
    pytest.importorskip("timm")
    path = write(tmp_path, "registered.py", """\
        from timm.models import register_model
        from torch import nn


        @register_model
        def rflint_test_registered_net(pretrained=False, **kwargs):
            return globals()["_make"]()


        def _make():
            return nn.Sequential(nn.Conv2d(3, 8, 3))
        """)
    entries, _ = discover(path)
    assert [e.name for e in entries] == ["rflint_test_registered_net"]


@pytest.mark.parametrize(
    "signature, expected",
    [
        ("weights=None", (True, None)),
        ("pretrained=False", (True, False)),
        ("pretrained='imagenet'", (True, None)),
        ("encoder_weights='imagenet'", (True, None)),
        ("backbone_weights", (True, None)),
        ("pretrained_backbone=True", (True, False)),
        ("weights_backbone=None", (True, None)),
        ("loss_weights=(1, 1)", (False, None)),
        ("init_weights=True", (False, None)),
        ("width=8", (False, None)),
    ],
)
def test_no_weights_values(signature, expected):
    namespace = {}
    exec(f"def f({signature}): pass", namespace)
    parameter = next(iter(inspect.signature(namespace["f"]).parameters.values()))
    assert no_weights_value(parameter) == expected


def test_segmentation_models_pytorch_asks_for_no_encoder_weights():
    smp = pytest.importorskip("segmentation_models_pytorch")
    assert no_argument_kwargs(smp.Unet)["encoder_weights"] is None


class Squares(nn.Module):
    def forward(self, x):
        return x * x


class NeedsLargeInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.Conv2d(8, 8, 3, stride=2), nn.MaxPool2d(8))

    def forward(self, x):
        return self.body(x)


def test_a_module_without_spatial_layer_is_skipped():
    with pytest.raises(NotAModel, match="no spatial layer"):
        analyze_model(ModelEntry("Squares", __file__, 1, 1, "class", Squares), 32, frozenset())


def test_a_model_needing_a_larger_input_says_how_large():
    """Two 3x3 stride-2 convs then an 8x8 pool: the pool needs 8 px, the second conv 17,
    the first 35 ((35 - 3) // 2 + 1 = 17)."""
    from rflint.frontends.torch.analysis import CaptureError

    with pytest.raises(CaptureError, match="needs at least 35 px; it cannot run at 24 px"):
        analyze_model(ModelEntry("NeedsLargeInput", __file__, 1, 1, "class", NeedsLargeInput), 24, frozenset())


def test_classes_that_are_not_models(tmp_path):
    write(tmp_path, "zoo.py", """\
        import torch
        from torch import nn


        class FocalLoss(nn.Module):
            def forward(self, logits, target):
                return (logits - target).abs().mean()


        class Smoothing(nn.modules.loss._Loss):
            def forward(self, x):
                return x.mean()


        class IoUMetric(nn.Module):
            def forward(self, x):
                return x.mean()


        class Base(nn.Module):
            def forward(self, x):
                \"\"\"Subclasses say how.\"\"\"
                raise NotImplementedError("subclass")


        class Fusion(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(6, 8, 3)

            def forward(self, x, y):
                return self.conv(torch.cat([x, y], 1))


        class Swish(nn.Module):
            def forward(self, x):
                return x * torch.sigmoid(x)


        class Stem(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3, stride=2)
                self.pool = nn.MaxPool2d(8)

            def forward(self, x):
                return self.pool(self.conv(x))


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)

            def forward(self, x, scale=1.0):
                return self.conv(x) * scale
        """)
    run = rflint("zoo.py", "--input-res", "16", "--no-cache", "--verbose", cwd=tmp_path)
    info = run.stderr
    assert "skipped FocalLoss: a loss, not a model" in info
    assert "skipped Smoothing: a loss, not a model" in info
    assert "skipped IoUMetric: a metric, not a model" in info
    assert "skipped Base: an abstract base: forward() raises NotImplementedError" in info
    assert "skipped Fusion: forward() needs 2 inputs (x, y)" in info
    assert "skipped Swish: no spatial layer (convolution, pooling or a Linear on patches)" in info
    assert "zoo.py: Net analyzed at 16x16" in info
    assert run.stdout.splitlines() == [
        "zoo.py:40:1: RF903 [Stem] cannot trace: needs at least 17 px; it cannot run at 16 px "
        "(set input-res for it in [tool.rflint] models)",
        "",
        "Found 1 error.",
        "1 model analyzed, 6 skipped (--verbose says why).",
    ]


def test_abstract_forward_is_found_without_running_it():
    class Abstract(nn.Module):
        def forward(self, x):
            raise NotImplementedError

    assert class_skip_reason(Abstract) == "an abstract base: forward() raises NotImplementedError"


HF_LIKE = """\
    from torch import nn


    class TinyConfig:
        def __init__(self, width=8, image_size=48):
            self.width, self.image_size = width, image_size


    class TinyPreTrainedModel(nn.Module):
        config_class = TinyConfig


    class TinyModel(TinyPreTrainedModel):
        def __init__(self, config):
            super().__init__()
            self.conv = nn.Conv2d(3, config.width, 3, stride=2)

        def forward(self, pixel_values=None, output_hidden_states=None):
            return self.conv(pixel_values)
"""


def test_models_with_a_config_class_build_from_its_defaults(tmp_path):
    entries, skipped = discover(write(tmp_path, "tiny.py", HF_LIKE))
    [entry] = entries
    assert entry.name == "TinyModel" and entry.factory()().conv.out_channels == 8
    assert declared_resolution(entry) == (48, 48)
    assert skipped == ["skipped TinyPreTrainedModel: no forward() of its own: a base class or a container"]


def test_hugging_face_conv_models_are_found():
    modeling = pytest.importorskip("transformers.models.convnext.modeling_convnext")
    source = inspect.getsource(modeling)
    entries, _ = find_models(modeling, modeling.__file__, source)
    names = {e.name: e for e in entries}
    assert {"ConvNextModel", "ConvNextForImageClassification"} <= set(names)
    assert declared_resolution(names["ConvNextForImageClassification"]) == (224, 224)


EFFNET = """\
    from torch import nn


    class EffNet(nn.Module):
        def __init__(self, blocks_args=None, global_params=None):
            super().__init__()
            assert blocks_args is not None, "use EffNet.from_name"
            self.convs = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=s) for i, s in enumerate(blocks_args)])

        def forward(self, x):
            return self.convs(x)

        @classmethod
        def from_name(cls, model_name, **override_params):
            return cls({"effnet-b0": [2, 2], "effnet-b1": [2, 2, 2]}[model_name])
"""


def test_named_constructors_from_the_config(tmp_path):
    """The bare class is skipped with a pointer to its constructor; the configured one builds."""
    write(tmp_path, "effnet.py", EFFNET)
    write(tmp_path, "rflint.toml", """\
        models = [
            {target = "effnet.py::EffNet.from_name", kwargs = {model_name = "effnet-b0"}},
            {target = "effnet.py::EffNet.from_name", arguments = "'effnet-b1'"},
        ]
        """)
    run = rflint("effnet.py", "--input-res", "32", "--no-cache", "--verbose", cwd=tmp_path)
    assert "skipped EffNet: cannot be built bare (AssertionError); it is built by EffNet.from_name(...)" in run.stderr
    assert "EffNet.from_name analyzed at 32x32" in run.stderr
    assert "EffNet.from_name('effnet-b1') analyzed at 32x32" in run.stderr
    assert run.returncode == 0, run.stdout


def test_configured_entry_with_kwargs_is_kept_next_to_a_factory_of_its_class(tmp_path):
    """``deep_net()`` builds DeepResNet; the configured DeepResNet(depth=3) is not a mere block of it."""
    write(tmp_path, "resnetish.py", NET.replace("class Net", "class DeepResNet") + """\


    def deep_net():
        return DeepResNet(6)
""")
    write(tmp_path, "rflint.toml", 'models = [{target = "resnetish.py::DeepResNet", kwargs = {depth = 3}}]\n')
    run = rflint("resnetish.py", "--input-res", "32", "--no-cache", "--verbose", "--output-format", "json", cwd=tmp_path)
    import json

    models = {m["name"]: m for m in json.loads(run.stdout)["models"]}
    assert set(models) == {"DeepResNet", "deep_net"}
    assert (models["DeepResNet"]["layers"], models["deep_net"]["layers"]) == (3, 6)  # built with its own kwargs


def test_configured_arguments_express_none_objects_and_calls(tmp_path):
    path = write(tmp_path, "needs.py", """\
        from torch import nn


        class Options:
            def __init__(self, width):
                self.width = width


        class Needs(nn.Module):
            def __init__(self, spatial_dims, options, norm, act):
                super().__init__()
                assert norm is None and spatial_dims == 2
                self.conv = nn.Conv2d(3, options.width, 3)
                self.act = act

            def forward(self, x):
                return self.act(self.conv(x))
        """)
    entry = model_entry({"target": "needs.py::Needs",
                         "arguments": "2, options=Options(width=4), norm=None, act=torch.nn.ReLU()"}, tmp_path)
    entries, skipped = discover(path, [entry])
    [needs] = entries
    model = needs.factory()()
    assert model.conv.out_channels == 4 and isinstance(model.act, nn.ReLU)
    assert skipped == []


def test_a_failing_configured_argument_is_the_models_build_error(tmp_path):
    path = write(tmp_path, "needs.py", NET)
    entries, _ = discover(path, [model_entry({"target": "needs.py::Net", "arguments": "depth=undefined_name"}, tmp_path)])
    with pytest.raises(NameError, match="undefined_name"):
        entries[0].factory()()


@pytest.mark.parametrize(
    "factory, expected",
    [("torchvision.models.segmentation:fcn_resnet50", (520, 520)),
     ("pretrainedmodels.models.inceptionv4:inceptionv4", (299, 299)),
     ("pretrainedmodels.models.nasnet:nasnetalarge", (331, 331))],
)
def test_declared_resolution_of_libraries(factory, expected):
    import importlib

    module_name, name = factory.split(":")
    try:
        target = getattr(importlib.import_module(module_name), name)
    except ImportError as error:
        pytest.skip(str(error))
    entry = ModelEntry(name, "", 1, 1, "factory", target, no_argument_kwargs(target))
    assert declared_resolution(entry) == expected


def test_a_configured_entry_with_arguments_gets_verified_fixes(tmp_path):
    """The fix search rebuilds the model from its re-imported file with the same arguments."""
    write(tmp_path, "needs.py", """\
        from torch import nn


        class Needs(nn.Module):
            def __init__(self, norm, depth):
                super().__init__()
                assert norm is None
                self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1),
                                          *[nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth)])

            def forward(self, x):
                return self.body(x)
        """)
    write(tmp_path, "rflint.toml", 'models = [{target = "needs.py::Needs", arguments = "norm=None, depth=6"}]\n')
    # I_min 3 + 6 * 4 = 27 >= 16; with stride 1: 3 + 6 * 2 = 15 (FLOPs x4, within the budget)
    run = rflint("needs.py", "--input-res", "16", "--no-cache", "--fix", cwd=tmp_path)
    assert "stride=1" in (tmp_path / "needs.py").read_text(), run.stdout + run.stderr


def test_a_positional_config_replaces_the_config_class_default(tmp_path):
    """``arguments = "TinyConfig(...)"`` is the config: not also passed as ``config=TinyConfig()``,
    and ``--input-res auto`` reads its image_size."""
    path = write(tmp_path, "tiny.py", HF_LIKE)
    entries, _ = discover(path, [model_entry({"target": "tiny.py::TinyModel", "arguments": "TinyConfig(width=4, image_size=40)"},
                                             tmp_path)])
    [entry] = entries
    assert entry.factory()().conv.out_channels == 4
    assert declared_resolution(entry) == (40, 40)


class LinearPatches(nn.Module):
    """A ViT stem without a conv: 4x4 patches cut by reshape, embedded by a Linear."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3 * 16, 8)

    def forward(self, x):
        b, c, h, w = x.shape
        patches = x.reshape(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(b, h // 4, w // 4, c * 16)
        return self.proj(patches)


def test_a_vit_stem_without_conv_is_a_model():
    result = analyze_model(ModelEntry("LinearPatches", __file__, 1, 1, "class", LinearPatches), 32, frozenset())
    assert "linear" in [layer.kind for layer in result.layers] and result.i_min == (4, 4)
