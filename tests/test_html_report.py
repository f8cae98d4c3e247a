"""``rflint report MODEL_SPEC``: the self-contained HTML page, its numbers, and what
headless Chromium makes of it."""

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import rflint
from rflint.report import html as html_report
from rflint.run import report_command

TINY_NET = textwrap.dedent("""\
    from torch import nn


    def tiny_net() -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
            *[m for _ in range(5) for m in (nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())],
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
        )
""")
MOBILENET = "torchvision.models.mobilenetv3:mobilenet_v3_large"
# Anything the page would fetch: an attribute or CSS reference that is not a fragment of
# the page itself (the SVG clips with ``url(#id)`` and reuses markers with ``href="#id"``).
EXTERNAL_REFERENCE = re.compile(r"""\b(?:src|href|action|data)\s*=\s*["']?\s*[^"'#\s]|url\(\s*["']?\s*[^#\s"']|@import""", re.I)


def rows_with_class(page: str, state: str) -> list[str]:
    """The layer names (second cell) of the table rows of class ``state``."""
    return re.findall(rf'<tr class="{state}"><td>\d+</td><td>([^<]*)</td>', page)


def summary_value(page: str, label: str) -> str:
    return re.search(rf"<th>{re.escape(label)}[^<]*</th><td[^>]*>([^<]*)</td>", page)[1]


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory) -> tuple[Path, str]:
    """The report of a net whose r_min reaches 39, then 47, at I_res 32."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "net.py").write_text(TINY_NET)
    output = folder / "report.html"
    assert report_command.main([f"{folder / 'net.py'}::tiny_net", "--input-res", "32", "-o", str(output)]) == 0
    return folder, output.read_text()


def test_page_shows_the_limits_the_layer_states_and_the_fix(tiny_report):
    folder, page = tiny_report
    assert summary_value(page, "I_res") == "32"
    assert summary_value(page, "I_min") == "47"
    assert summary_value(page, "fully utilized") == "no"
    # Layers 10 (r_min 39) and 12 (its input's r_min 39 >= 32) of the Sequential.
    assert rows_with_class(page, "underutilized") == ["10"]
    assert rows_with_class(page, "unproductive") == ["12"]
    assert "stride 2 -&gt; 1 of 2: I_min 47 -&gt; 27" in page  # the closest I_min below 32
    assert "r_min after fix (I_min 27)" in page  # the fix's curve, in the chart
    assert "I_res = 32" in page and page.count("<svg") == 1
    assert (folder / "net.py").read_text() == TINY_NET  # the fix was applied in memory only


def test_page_loads_nothing(tiny_report):
    _, page = tiny_report
    assert not EXTERNAL_REFERENCE.search(page)
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert "default-src 'none'" in page  # and the browser is told to fetch nothing anyway


@pytest.mark.parametrize("spec, message", [
    ("justtext", 'expected "path.py::name" or "package.module:factory", got "justtext"'),
    ("nosuchpkg.models:net", "No module named 'nosuchpkg'"),
    ("nosuchmodule:net", "model 'nosuchmodule:net': module 'nosuchmodule' not found"),
    ("missing.py::net", "no such file"),
    ("raising.py::net", "cannot import raising.py::net: RuntimeError: at import"),
    ("exiting.py::net", "cannot import exiting.py::net: SystemExit: the file called sys.exit(3) at import"),
    ("net.py::absent", "net.py::absent: 'absent' is not defined in net.py"),
    ("net.py::needs_arguments", "cannot analyze needs_arguments: TypeError"),
    ("net.py::needs_arguments --input-res big", 'expected a positive int, "HxW", "DxHxW" or "auto", got "big"'),
])
def test_a_bad_spec_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, spec, message):
    (tmp_path / "raising.py").write_text('raise RuntimeError("at import\\nsecond line")\n')
    (tmp_path / "exiting.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "net.py").write_text("from torch import nn\n\n\ndef needs_arguments(width) -> nn.Module:\n    ...\n")
    monkeypatch.chdir(tmp_path)
    assert report_command.main([*spec.split(), "-o", "out.html"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("rflint: error: ") and message in error and error.count("\n") == 1
    assert "configured" not in error  # the spec came from the command line
    assert not (tmp_path / "out.html").exists()


def test_report_is_a_subcommand_with_its_own_help(tmp_path):
    main_help = rflint("--help", cwd=tmp_path)
    assert re.search(r"^  report MODEL_SPEC \[-o FILE\] +write an HTML page", main_help.stdout, re.M)
    assert re.search(r"^  server +a language server", main_help.stdout, re.M)
    own_help = rflint("report", "--help", cwd=tmp_path)
    assert own_help.returncode == 0 and own_help.stdout.startswith("usage: rflint report ")
    assert "--no-fix" in own_help.stdout and "--paths" not in own_help.stdout
    no_spec = rflint("report", cwd=tmp_path)
    assert no_spec.returncode == 2
    assert no_spec.stderr.endswith("rflint report: error: the following arguments are required: MODEL_SPEC\n")


DEEP_NET = textwrap.dedent("""\
    from torch import nn


    def deep(depth) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1),
                             *[nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth)])
""")


def test_a_configured_model_is_built_with_its_kwargs_and_resolution(tmp_path):
    (tmp_path / "nets.py").write_text(DEEP_NET)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.rflint]\ninput-res = 224\nmodels = [{ target = "nets.py::deep", kwargs = { depth = 5 }, input-res = 16 }]\n')
    run = rflint("report", "nets.py::deep", "--no-fix", "-o", "out.html", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    page = (tmp_path / "out.html").read_text()
    assert summary_value(page, "I_res") == "16" and summary_value(page, "I_min") == "23"  # 3 + 5 * 2 * 2
    assert len(re.findall(r"<tr(?: class=\"\w+\")?><td>\d+</td>", page)) == 6  # the stem and depth=5 convs
    isolated = rflint("report", "nets.py::deep", "--isolated", "-o", "out.html", cwd=tmp_path)
    assert isolated.returncode == 2 and "cannot analyze deep: TypeError" in isolated.stderr  # no kwargs then
    explicit = rflint("report", "nets.py::deep", "--no-fix", "--input-res", "20", "-o", "out.html", cwd=tmp_path)
    assert explicit.returncode == 0 and summary_value((tmp_path / "out.html").read_text(), "I_res") == "20"


def test_the_layer_table_has_the_source_line_and_the_chart_spans_the_page(tiny_report):
    _, page = tiny_report
    assert "<th>source</th>" in page
    sources = re.findall(r"<tr[^>]*><td>\d+</td><td>([^<]*)</td>(?:<td>[^<]*</td>){7}<td>([^<]*)</td></tr>", page)
    assert dict(sources)["0"].endswith("net.py:6") and dict(sources)["10"].endswith("net.py:8")
    assert "svg { width: 100%; height: auto; }" in page and re.search(r'<svg [^>]*viewBox="0 0 864 ', page)


def test_a_folder_named_report_is_still_linted_as_a_path(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "net.py").write_text(TINY_NET)
    run = rflint("report", "--input-res", "32", "--no-cache", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert re.search(r"^report/net\.py:\d+:\d+: RF003 (\[\*\] )?\[tiny_net\]", run.stdout, re.M)


@pytest.fixture(scope="module")
def mobilenet_report(tmp_path_factory) -> Path:
    """The report of torchvision's MobileNetV3 large at 224, through the real command."""
    output = tmp_path_factory.mktemp("mobilenet") / "report.html"
    run = rflint("report", MOBILENET, "--input-res", "224", "-o", output)
    assert run.returncode == 0, run.stderr
    assert "I_min=263" in run.stdout
    return output


def test_mobilenet_v3_large_crosses_224_and_the_paper_fix_stays_below(mobilenet_report):
    page = mobilenet_report.read_text()
    assert summary_value(page, "I_min") == "263" and summary_value(page, "I_res") == "224"
    assert rows_with_class(page, "unproductive") == ["features.14.block.3.0", "features.15.block.3.0"]
    assert rows_with_class(page, "underutilized") == ["features.14.block.1.0", "features.15.block.1.0"]
    assert "stride 2 -&gt; 1 of features.13.block.1.0: I_min 263 -&gt; 199" in page  # the paper's change
    assert "r_min after fix (I_min 199)" in page
    assert "torchvision/models/mobilenetv3.py:" in page  # the literal to edit, by package path
    assert not EXTERNAL_REFERENCE.search(page)


def chromium_screenshot(page: Path, shot: Path, height: int) -> Image.Image:
    """Headless Chromium as the issue runs it, cut off from the network and any profile."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None and os.environ.get("RFLINT_REQUIRE_CHROMIUM"):
        pytest.fail("headless Chromium is needed to render the report: apt-get install chromium (.ci/run does)")
    if chromium is None:  # a developer's machine; CI sets RFLINT_REQUIRE_CHROMIUM and installs it
        pytest.skip("no chromium or chromium-browser on PATH to render the report (apt-get install chromium)")
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={shot.parent / 'chromium-profile'}", f"--screenshot={shot}",
         f"--window-size=1280,{height}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    return Image.open(shot).convert("RGB")


def pixels_near(image: np.ndarray, color: str, tolerance: int = 8) -> int:
    target = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image.astype(int) - target).max(axis=-1) <= tolerance).sum())


def test_chromium_renders_the_chart_and_the_coloured_rows(mobilenet_report, tmp_path):
    image = chromium_screenshot(mobilenet_report, tmp_path / "shot.png", height=3400)  # the whole table
    pixels = np.asarray(image)
    assert image.size == (1280, 3400)
    assert len(image.getcolors(maxcolors=1 << 24)) > 200  # text, curves, bands: not a blank page
    assert (pixels.min(axis=-1) < 240).mean() > 0.05
    row = 1100 * 14  # a table row is about 1100 x 15 px
    assert pixels_near(pixels, html_report.UNPRODUCTIVE_COLOR) > 2 * row  # the two unproductive rows
    assert pixels_near(pixels, html_report.UNDERUTILIZED_COLOR) > 2 * row
    assert pixels_near(pixels, html_report.I_RES_COLOR, tolerance=24) > 1500  # the I_res line
    assert pixels_near(pixels, html_report.FIXED_COLOR, tolerance=24) > 1500  # the fix's curve (the badge alone is ~700)
