"""Config discovery, validation and rule selection (rflint/config.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rflint.core.resolution import parse_input_res
from rflint.run.config import DEFAULT_EXCLUDE, ConfigError, ModelEntry, Settings, find_config, is_selected, load_settings


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(tmp_path: Path, toml: str, cli: dict | None = None, name: str = "pyproject.toml") -> Settings:
    return load_settings(write(tmp_path / name, toml), cli or {})


def config_error(tmp_path: Path, toml: str, name: str = "pyproject.toml") -> str:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, toml, name=name)
    message = str(error.value)
    assert "\n" not in message
    return message


# --- find_config ---------------------------------------------------------------------


def test_closest_config_wins(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.rflint]\n")
    inner = write(tmp_path / "pkg" / "pyproject.toml", "[tool.rflint]\ninput-res = 128\n")
    (tmp_path / "pkg" / "models").mkdir()
    assert find_config(tmp_path / "pkg" / "models") == inner
    assert find_config(tmp_path) == tmp_path / "pyproject.toml"


def test_start_may_be_a_file(tmp_path):
    config = write(tmp_path / "rflint.toml", "")
    model = write(tmp_path / "models" / "net.py", "")
    assert find_config(model) == config


def test_pyproject_without_table_is_skipped(tmp_path):
    outer = write(tmp_path / "pyproject.toml", "[tool.rflint]\n")
    write(tmp_path / "sub" / "pyproject.toml", "[project]\nname = 'sub'\n[tool.ruff]\n")
    assert find_config(tmp_path / "sub") == outer


def test_pyproject_without_table_is_not_a_config(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.black]\n")
    assert find_config(tmp_path) != tmp_path / "pyproject.toml"


@pytest.mark.parametrize("name", ["rflint.toml", ".rflint.toml"])
def test_rflint_toml_beats_pyproject_in_same_folder(tmp_path, name):
    write(tmp_path / "pyproject.toml", "[tool.rflint]\ninput-res = 128\n")
    config = write(tmp_path / name, "input-res = 96\n")
    assert find_config(tmp_path) == config
    assert load_settings(config, {}).input_res == (96, 96)  # top-level keys, no [tool.rflint]


def test_invalid_toml_is_a_config_error(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.rflint\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        find_config(tmp_path)


# --- load_settings ---------------------------------------------------------------------


def test_defaults_without_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {})
    assert settings == Settings(root=tmp_path.resolve())
    assert settings.select == ("RF",) and settings.timeout == 60
    assert settings.input_res is None and not settings.input_res_auto
    assert "site-packages" not in settings.exclude and ".venv" in settings.exclude


def test_full_config(tmp_path):
    settings = load(
        tmp_path,
        """
[tool.rflint]
input-res = [224, 192]
select = ["RF0"]
ignore = ["RF003"]
exclude = ["legacy"]
extend-exclude = ["*_old.py"]
per-file-ignores = {"models/legacy/*" = ["RF001"]}
timeout = 5

[[tool.rflint.models]]
target = "models/net.py::make_net"
kwargs = {width = 2}

[[tool.rflint.models]]
target = "torchvision.models:resnet50"
input-res = "256x224"

[[tool.rflint.models]]
target = "monai.networks.nets:UNet"
arguments = "spatial_dims=2, norm=None, act=torch.nn.ReLU"
""",
    )
    assert settings.root == tmp_path.resolve()
    assert settings.config_file == (tmp_path / "pyproject.toml").resolve()
    assert settings.input_res == (224, 192) and not settings.input_res_auto
    assert (settings.select, settings.ignore) == (("RF0",), ("RF003",))
    assert (settings.exclude, settings.extend_exclude) == (("legacy",), ("*_old.py",))
    assert settings.per_file_ignores == {"models/legacy/*": ("RF001",)}
    assert settings.timeout == 5.0
    assert settings.models == (
        ModelEntry("models/net.py::make_net", "make_net", file=tmp_path.resolve() / "models/net.py", kwargs={"width": 2}),
        ModelEntry("torchvision.models:resnet50", "resnet50", module="torchvision.models", input_res=(256, 224)),
        ModelEntry("monai.networks.nets:UNet", "UNet", module="monai.networks.nets",
                   arguments="spatial_dims=2, norm=None, act=torch.nn.ReLU"),
    )


def test_extend_exclude_keeps_default_exclude(tmp_path):
    settings = load(tmp_path, '[tool.rflint]\nextend-exclude = ["legacy"]\n')
    assert settings.exclude == DEFAULT_EXCLUDE and settings.extend_exclude == ("legacy",)


@pytest.mark.parametrize(
    "value, expected",
    [("224", (224, 224)), ('"224x192"', (224, 192)), ('"96X64"', (96, 64)), ("[7, 9]", (7, 9)),
     ('"16x112x112"', (16, 112, 112)), ("[8, 64, 48]", (8, 64, 48))],
)
def test_input_res_forms(tmp_path, value, expected):
    assert load(tmp_path, f"[tool.rflint]\ninput-res = {value}\n").input_res == expected


def test_input_res_auto(tmp_path):
    settings = load(tmp_path, '[tool.rflint]\ninput-res = "auto"\n')
    assert settings.input_res is None and settings.input_res_auto


def test_unknown_key_names_file_key_and_suggestion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = config_error(tmp_path, "[tool.rflint]\ninput_res = 224\n")
    assert message == "pyproject.toml: [tool.rflint] unknown key 'input_res' (did you mean 'input-res'?)"


def test_unknown_key_without_close_match(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_error(tmp_path, "colour = 1\n", name="rflint.toml") == "rflint.toml: unknown key 'colour'"


@pytest.mark.parametrize(
    "toml, expected",
    [
        ('input-res = "big"', """invalid value for 'input-res': expected a positive int, "HxW", "DxHxW" or "auto", got "big\""""),
        ("input-res = 0", """invalid value for 'input-res': expected a positive int, "HxW", "DxHxW" or "auto", got 0"""),
        ("input-res = true", """invalid value for 'input-res': expected a positive int, "HxW", "DxHxW" or "auto", got true"""),
        ("input-res = [224]", """invalid value for 'input-res': expected a positive int, "HxW", "DxHxW" or "auto", got [224]"""),
        ('select = "RF"', """invalid value for 'select': expected a list of strings, got "RF\""""),
        ('select = ["XYZ1"]', "invalid value for 'select': Unknown rule selector `XYZ1`"),
        ('ignore = ["R"]', "invalid value for 'ignore': Unknown rule selector `R`"),
        ('ignore = ["RF005"]', "invalid value for 'ignore': Unknown rule selector `RF005`"),
        ('per-file-ignores = {"a/*" = ["RF1"]}', "invalid value for 'per-file-ignores': Unknown rule selector `RF1`"),
        ("timeout = -1", "invalid value for 'timeout': expected a positive number of seconds, got -1"),
        ("timeout = nan", "invalid value for 'timeout': expected a positive number of seconds, got NaN"),
        ("timeout = inf", "invalid value for 'timeout': expected a positive number of seconds, got Infinity"),
        ('models = [{target = "nope"}]', """invalid value for 'models[0].target': expected "path.py::name" or "package.module:factory", got "nope\""""),
        (
            'models = [{target = "a:b"}, {target = "a:c", input_res = 1}]',
            "invalid value for 'models[1]': unknown key 'input_res' (did you mean 'input-res'?)",
        ),
        ('models = [{target = "a:b", input-res = "auto"}]', """invalid value for 'models[0].input-res': expected a positive int, "HxW" or "DxHxW", got "auto\""""),
        ('models = [{target = "a:b", arguments = 2}]',
         """invalid value for 'models[0].arguments': expected a string of Python arguments, e.g. "2, norm=None", got 2"""),
        ('models = [{target = "a:b", arguments = "norm=None,,"}]',
         """invalid value for 'models[0].arguments': not Python call arguments: invalid syntax: "norm=None,,\""""),
        ('models = [{target = "a:b", arguments = "1) + g(2"}]',
         """invalid value for 'models[0].arguments': expected plain positional and keyword arguments, got "1) + g(2\""""),
        ('models = [{target = "a:b", arguments = "**options"}]',
         """invalid value for 'models[0].arguments': expected plain positional and keyword arguments, got "**options\""""),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, monkeypatch, toml, expected):
    monkeypatch.chdir(tmp_path)
    assert config_error(tmp_path, f"[tool.rflint]\n{toml}\n") == f"pyproject.toml: [tool.rflint] {expected}"


def test_config_outside_cwd_is_named_by_its_path(tmp_path, monkeypatch):
    monkeypatch.chdir(write(tmp_path / "elsewhere" / "x", "").parent)
    message = config_error(tmp_path, "timeout = 0\n", name="rflint.toml")
    assert message.startswith(f"{(tmp_path / 'rflint.toml').resolve()}: invalid value for 'timeout'")


@pytest.mark.parametrize("selector", ["RF", "RF0", "RF00", "RF001", "RF9", "RF903"])
def test_known_selectors(tmp_path, selector):
    assert load(tmp_path, f'[tool.rflint]\nselect = ["{selector}"]\n').select == (selector,)


def test_cli_beats_file(tmp_path):
    settings = load(
        tmp_path,
        '[tool.rflint]\ninput-res = 128\nselect = ["RF001"]\ntimeout = 5\nexclude = ["a"]\n',
        cli={"input-res": "auto", "select": ["RF002"], "timeout": 9.5, "exclude": ["b"]},
    )
    assert settings.input_res is None and settings.input_res_auto
    assert settings.select == ("RF002",) and settings.timeout == 9.5 and settings.exclude == ("b",)


def test_cli_input_res_replaces_file_auto(tmp_path):
    settings = load(tmp_path, '[tool.rflint]\ninput-res = "auto"\n', cli={"input-res": "224x192"})
    assert settings.input_res == (224, 192) and not settings.input_res_auto


def test_cli_ignore_adds_to_file_ignore_unless_cli_selects(tmp_path):
    toml = '[tool.rflint]\nignore = ["RF003"]\nextend-exclude = ["a"]\n'
    adding = load(tmp_path, toml, cli={"ignore": ["RF002"], "extend-exclude": ["b"]})
    assert adding.ignore == ("RF003", "RF002") and adding.extend_exclude == ("a", "b")
    starting_over = load(tmp_path, toml, cli={"select": ["RF003"], "ignore": ["RF002"]})
    assert starting_over.ignore == ("RF002",)
    assert is_selected("RF003", starting_over, tmp_path / "net.py")


def test_cli_errors_name_the_option():
    with pytest.raises(ConfigError, match=r"^invalid value for '--select': Unknown rule selector `XYZ1`$"):
        load_settings(None, {"select": ["XYZ1"]})
    with pytest.raises(ConfigError, match=r"^invalid value for '--input-res': expected .*got \"big\"$"):
        load_settings(None, {"input-res": "big"})


# --- parse_input_res ------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [("224", (224, 224)), ("224x192", (224, 192)), (" 32 ", (32, 32)), ("auto", "auto")])
def test_parse_input_res(text, expected):
    assert parse_input_res(text) == expected


@pytest.mark.parametrize("text", ["big", "0", "-3", "224x", "x224", "224x0", "22.4", ""])
def test_parse_input_res_rejects(text):
    with pytest.raises(ValueError, match="expected a positive int"):
        parse_input_res(text)


# --- is_selected ----------------------------------------------------------------------


def settings_for(tmp_path: Path, **values) -> Settings:
    return Settings(root=tmp_path, **values)


@pytest.mark.parametrize(
    "select, ignore, code, expected",
    [
        (("RF",), (), "RF001", True),
        (("RF0",), (), "RF901", False),
        (("RF",), ("RF9",), "RF901", False),
        (("RF",), ("RF9",), "RF001", True),
        (("RF001",), ("RF",), "RF001", True),  # the more specific selector decides
        (("RF0",), ("RF0",), "RF001", False),  # ignore wins a tie
        ((), (), "RF001", False),
    ],
)
def test_select_and_ignore(tmp_path, select, ignore, code, expected):
    assert is_selected(code, settings_for(tmp_path, select=select, ignore=ignore), tmp_path / "a.py") is expected


@pytest.mark.parametrize(
    "pattern, file, ignored",
    [
        ("models/legacy/*", "models/legacy/net.py", True),
        ("models/legacy/*", "models/legacy/deep/net.py", True),  # `*` crosses `/`, like ruff
        ("models/legacy/*", "models/net.py", False),
        ("*_old.py", "models/deep/resnet_old.py", True),  # basename match
        ("net.py", "models/net.py", True),
        ("**/net.py", "net.py", True),
        ("models/*.py", "other/models/net.py", False),
    ],
)
def test_per_file_ignores_globs(tmp_path, pattern, file, ignored):
    settings = settings_for(tmp_path, per_file_ignores={pattern: ("RF00",)})
    assert is_selected("RF001", settings, tmp_path / file) is not ignored
    assert is_selected("RF901", settings, tmp_path / file)


def test_per_file_ignores_relative_to_config_folder(tmp_path, monkeypatch):
    settings = load(tmp_path / "proj", '[tool.rflint]\nper-file-ignores = {"models/*" = ["RF001"]}\n')
    monkeypatch.chdir(tmp_path)
    assert not is_selected("RF001", settings, Path("proj/models/net.py"))
    assert is_selected("RF001", settings, tmp_path / "models" / "net.py")


def test_torch_free_imports():
    """The warm cached path must not import torch: config, files, noqa and the rule codes."""
    code = (
        "import sys, rflint.run.config, rflint.run.files, rflint.core.noqa;"
        "rflint.run.config.load_settings(None, {'select': ['RF0']});"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr


def test_explicit_pyproject_without_table_gives_defaults(tmp_path):
    settings = load(tmp_path, "[project]\nname = 'x'\n")
    assert settings.select == ("RF",) and settings.config_file == (tmp_path / "pyproject.toml").resolve()


def test_rflint_table_must_be_a_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_error(tmp_path, "[tool]\nrflint = 0\n") == "pyproject.toml: [tool.rflint] expected a table, got 0"


@pytest.mark.parametrize("text, expected", [("4G", 4 * 2**30), ("512M", 512 * 2**20), ("2GiB", 2 * 2**30),
                                            ("1.5g", int(1.5 * 2**30)), (1000, 1000)])
def test_max_memory_takes_sizes(tmp_path, text, expected):
    (tmp_path / "rflint.toml").write_text(f"max-memory = {json.dumps(text)}\n")
    assert load_settings(tmp_path / "rflint.toml", {}).max_memory == expected


@pytest.mark.parametrize("text", ["0", "-1G", "lots", "4X", True])
def test_max_memory_rejects_what_is_not_a_size(tmp_path, text):
    with pytest.raises(ConfigError, match="invalid value for '--max-memory': expected a size such as 4G"):
        load_settings(None, {"max-memory": text})


# --- max-flops-ratio --------------------------------------------------------------------


def test_max_flops_ratio_default_admits_the_papers_refinements(tmp_path):
    # Section 5: x1.58 (MobileNetV3-L) ... x4.24 (EfficientNet-B0, 0.42 B -> 1.78 B MACs).
    default = load(tmp_path, "[tool.rflint]\n").max_flops_ratio
    assert 1.78 / 0.42 < default < 6
    assert load(tmp_path, "[tool.rflint]\nmax-flops-ratio = 2.5\n").max_flops_ratio == 2.5
    assert load(tmp_path, "[tool.rflint]\nmax-flops-ratio = 3\n", cli={"max-flops-ratio": 8.0}).max_flops_ratio == 8.0


@pytest.mark.parametrize("value", ["0.5", "true", '"x4"', "nan"])
def test_max_flops_ratio_must_be_a_number_of_at_least_one(tmp_path, value):
    assert config_error(tmp_path, f"[tool.rflint]\nmax-flops-ratio = {value}\n").endswith(
        f"invalid value for 'max-flops-ratio': expected a number >= 1 (the FLOPs after a fix / before it),"
        f" got {value.replace('nan', 'NaN')}")


def test_max_flops_ratio_on_the_command_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "rflint", str(tmp_path), "--max-flops-ratio", "0.9"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr == ("rflint: error: invalid value for '--max-flops-ratio': expected a number >= 1 (the FLOPs"
                          " after a fix / before it), got 0.9\n")
