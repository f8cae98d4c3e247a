"""The command line: configuration, selection, suppression and exit statuses, end to end."""

import re
import subprocess
import sys
import textwrap

from helpers import rflint

NET = textwrap.dedent('''\
    from torch import nn


    def net(width=8) -> nn.Sequential:
        return nn.Sequential(*[nn.Conv2d(3 if i == 0 else width, width, 3, stride=2, padding=1) for i in range(6)])


    def wide(width) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.Conv2d(width, width, 3, stride=2, padding=1))
''')


def project(tmp_path, config=""):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text(NET)
    (tmp_path / "pyproject.toml").write_text("[tool.rflint]\n" + textwrap.dedent(config))
    return tmp_path


def codes(run):
    return sorted({line.split(": ")[1].split()[0] for line in run.stdout.splitlines() if ": RF" in line})


def test_config_input_res_and_explicit_model_with_kwargs_and_resolution(tmp_path):
    repo = project(tmp_path, '''\
        input-res = 32
        models = [{ target = "models/net.py::wide", kwargs = { width = 4 }, input-res = 6 }]
    ''')
    run = rflint(".", "--no-cache", "--verbose", cwd=repo)
    assert run.returncode == 1
    assert "models/net.py:4:1: RF003 [net] model is not fully utilized: I_min=127 >= I_res=32" in run.stdout
    assert "models/net.py:8:1: RF003 [wide] model is not fully utilized: I_min=7 >= I_res=6" in run.stdout
    assert "wide analyzed at 6x6 (input resolution from the model's [tool.rflint] entry)" in run.stderr


def test_a_depth_x_height_x_width_resolution_for_video_models(tmp_path):
    """A square size would also set a video model's number of frames; DxHxW does not."""
    (tmp_path / "video.py").write_text(textwrap.dedent('''\
        from torch import nn


        def clip_net() -> nn.Module:
            return nn.Sequential(nn.Conv3d(3, 8, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3)), nn.Conv3d(8, 8, 3))


        def image_net() -> nn.Module:
            return nn.Conv2d(3, 8, 3)
    '''))
    run = rflint("video.py", "--input-res", "16x112x112", "--no-cache", "--verbose", cwd=tmp_path)
    assert "clip_net analyzed at 16x112x112" in run.stderr
    assert not any("[clip_net]" in line for line in run.stdout.splitlines())
    assert ("video.py:8:1: RF903 [image_net] cannot trace: ValueError: input resolution (16, 112, 112) has 3 axes, "
            "the model has 2") in run.stdout
    run = rflint("video.py", "--input-res", "16x8x8", "--no-cache", "--select", "RF003", cwd=tmp_path)
    assert "video.py:4:1: RF003 [clip_net] model is not fully utilized: I_min=5x11x11 >= I_res=16x8x8" in run.stdout


def test_command_line_beats_config(tmp_path):
    repo = project(tmp_path, "input-res = 32\n")
    assert rflint(".", "--input-res", "256", "--no-cache", cwd=repo).returncode == 0


def test_unknown_config_key_is_a_usage_error_naming_it(tmp_path):
    repo = project(tmp_path, "input_res = 32\n")
    run = rflint(".", cwd=repo)
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "rflint: error: pyproject.toml: [tool.rflint] unknown key 'input_res' (did you mean 'input-res'?)"
    )


def test_bad_input_res_and_unknown_selector_are_usage_errors(tmp_path):
    repo = project(tmp_path)
    assert rflint(".", "--input-res", "big", cwd=repo).returncode == 2
    run = rflint(".", "--select", "XYZ1", cwd=repo)
    assert run.returncode == 2 and "Unknown rule selector `XYZ1`" in run.stderr


def test_select_ignore_and_per_file_ignores(tmp_path):
    repo = project(tmp_path, 'input-res = 32\nper-file-ignores = { "models/*" = ["RF001"] }\n')
    assert codes(rflint(".", "--no-cache", cwd=repo)) == ["RF002", "RF003"]
    assert codes(rflint(".", "--select", "RF003", "--no-cache", cwd=repo)) == ["RF003"]
    assert codes(rflint(".", "--ignore", "RF00", "--no-cache", cwd=repo)) == []


def test_model_level_noqa_and_exit_zero(tmp_path):
    repo = project(tmp_path, "input-res = 32\n")
    net = repo / "models" / "net.py"
    net.write_text(NET.replace("-> nn.Sequential:\n    return nn.Sequential(*[", "-> nn.Sequential:  # rflint: noqa\n    return nn.Sequential(*[", 1))
    run = rflint(".", "--no-cache", cwd=repo)
    assert run.returncode == 0 and "All checks passed!" in run.stdout
    net.write_text(NET)
    assert rflint(".", "--exit-zero", "--no-cache", cwd=repo).returncode == 0


def test_explain_statistics_and_version(tmp_path):
    explain = rflint("--explain", "RF001")
    assert explain.returncode == 0 and explain.stdout.startswith("# unproductive-layer (RF001)")
    assert rflint("--explain", "RF999").returncode == 2
    repo = project(tmp_path, "input-res = 32\n")
    stats = rflint(".", "--statistics", "--no-cache", cwd=repo)
    assert stats.stdout.splitlines() == ["1\tRF001\tunproductive-layer", "1\tRF002\tunderutilized-layer",
                                         "1\tRF003\tnot-fully-utilized"]
    assert rflint("--version").stdout.strip() == "rflint 0.1.0"


def test_warm_run_reuses_the_cache_and_editing_the_file_invalidates_it(tmp_path):
    repo = project(tmp_path, "input-res = 32\n")
    first = rflint(".", "--verbose", cwd=repo)
    assert (repo / ".rflint_cache" / "CACHEDIR.TAG").exists()
    warm = subprocess.run([sys.executable, "-X", "importtime", "-m", "rflint", "."], cwd=repo,
                          capture_output=True, text=True)
    assert warm.stdout == first.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in warm.stderr.splitlines() if line.startswith("import time:")}
    assert "rflint.run.cache" in imported and "torch" not in imported  # a warm run never imports torch
    net = repo / "models" / "net.py"
    net.write_text(NET.replace("range(6)", "range(3)"))
    assert rflint(".", cwd=repo).returncode == 0


RESIDUAL = textwrap.dedent('''\
    from torch import nn

    HALF = int("2")  # computed: no literal to rewrite


    class Down(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3, stride=2, padding=1)
            self.skip = nn.AvgPool2d(HALF)

        def forward(self, x):
            return self.conv(x) + self.skip(x)


    def net() -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, 8, 3, stride=HALF, padding=1), *[Down() for _ in range(4)])
''')


def test_fix_that_fails_verification_leaves_the_file_byte_for_byte(tmp_path):
    """The only literal (the block's conv stride) would break the residual add: rejected."""
    model = tmp_path / "net.py"
    model.write_bytes(RESIDUAL.encode())
    before = model.stat().st_mtime_ns
    run = rflint("net.py", "--input-res", "32", "--fix", "--unsafe-fixes", "--show-fixes", "--no-cache", cwd=tmp_path)
    assert run.returncode == 1
    assert model.read_bytes() == RESIDUAL.encode() and model.stat().st_mtime_ns == before
    assert "RF003 [net]" in run.stdout and "[*]" not in run.stdout


def test_output_order_does_not_depend_on_jobs():
    one = rflint("fixtures/lint", "--input-res", "64", "--jobs", "1", "--no-cache")
    two = rflint("fixtures/lint", "--input-res", "64", "--jobs", "3", "--no-cache")
    assert one.stdout == two.stdout and one.stdout.count("RF00") == 10


def test_the_cache_reanalyzes_exactly_what_an_edit_touches(tmp_path):
    """Issue 6: an edit re-analyzes the edited file and its importers; the config and
    ``--input-res`` re-analyze everything; a damaged entry is ignored with a warning."""
    repo = project(tmp_path, "input-res = 32\n")
    models = repo / "models"
    (models / "blocks.py").write_text("from torch import nn\n\n\ndef stem(width):\n    return nn.Conv2d(3, width, 3, stride=2)\n")
    (models / "stemmed.py").write_text(
        "from torch import nn\n\nfrom blocks import stem\n\n\n"
        "def stemmed() -> nn.Sequential:\n    return nn.Sequential(stem(8), nn.Conv2d(8, 8, 3))\n")

    def sources(*options):
        run = rflint(".", "--verbose", *options, cwd=repo)
        assert run.returncode in (0, 1), run.stderr
        found = re.findall(r"^rflint: info: models/(\w+)\.py: (analyzed|from the cache) \(", run.stderr, re.M)
        return {name for name, how in found if how == "analyzed"}, run

    everything = {"blocks", "net", "stemmed"}
    assert sources()[0] == everything
    assert sources()[0] == set()
    (models / "blocks.py").write_text((models / "blocks.py").read_text() + "# edited\n")
    assert sources()[0] == {"blocks", "stemmed"}  # net.py does not import blocks.py
    (models / "net.py").write_text(NET + "# edited\n")
    assert sources()[0] == {"net"}
    (repo / "pyproject.toml").write_text("[tool.rflint]\ninput-res = 48\n")
    assert sources()[0] == everything
    assert sources("--input-res", "40")[0] == everything
    assert sources("--input-res", "40")[0] == set()
    entries = sorted((repo / ".rflint_cache").rglob("*"), key=lambda p: p.stat().st_mtime)
    damaged = [p for p in entries if p.is_file() and p.parent.name != ".rflint_cache" and not p.name.startswith(".")][-1]
    damaged.write_bytes(damaged.read_bytes()[:-10])
    # another command line: the same one would replay the last run's output (the damage changes nothing it read)
    analyzed, run = sources("--input-res", "40", "--exit-zero")
    assert len(analyzed) == 1 and f"ignoring corrupted cache entry {damaged}" in run.stderr
    assert sources("--input-res", "40")[0] == set()
