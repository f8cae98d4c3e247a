"""Issue 20: a ``Result`` renders itself in Jupyter, checked by running a real notebook
headless (nbclient and an IPython kernel) and reading the outputs it saved."""

import base64
import io
import re
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

import rflint
from rflint.report import html as html_report
from test_html_report import TINY_NET  # r_min 39, then 47, at I_res 32

SETUP = textwrap.dedent("""\
    import sys
    sys.path.insert(0, {folder!r})
    import rflint
    from tiny_nets import tiny_net
    result = rflint.analyze(tiny_net, input_res=32)
""")


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> nbformat.NotebookNode:
    """A three-cell notebook: analyse a net, show the Result, show its plot()."""
    folder = tmp_path_factory.mktemp("notebook")
    (folder / "tiny_nets.py").write_text(TINY_NET)
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(SETUP.format(folder=str(folder))),
        nbformat.v4.new_code_cell("result"),
        nbformat.v4.new_code_cell("result.plot()"),
    ])
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def test_a_result_cell_shows_the_summary_the_chart_and_the_flagged_layers(executed):
    [output] = executed.cells[1].outputs
    page = output["data"]["text/html"]
    assert "rflint: tiny_net at 32 px" in page
    assert re.search(r"<th>I_min[^<]*</th><td[^>]*>47</td>", page)  # the summary
    assert page.count("<svg") == 1 and "I_res = 32" in page and "r_min (I_min 47)" in page  # the chart
    # only the flagged layers, each with the line that built it
    flagged = re.findall(r'<tr class="(\w+)"><td>\d+</td><td>([^<]*)</td>.*?<td>([^<]*)</td></tr>', page)
    assert [(state, name) for state, name, _ in flagged] == [("underutilized", "10"), ("unproductive", "12")]
    assert all(source.endswith("tiny_nets.py:8") for _, _, source in flagged)  # the comprehension's line
    assert "<script" not in page and ".rflint-result table" in page  # scoped style, no scripts


def test_plot_returns_a_figure_the_notebook_draws(executed):
    outputs = executed.cells[2].outputs
    [figure] = [o for o in outputs if o["output_type"] == "execute_result"]
    assert figure["data"]["text/plain"].startswith("<ChartFigure size 1000x420")
    image = Image.open(io.BytesIO(base64.b64decode(figure["data"]["image/png"]))).convert("RGB")
    assert image.width > 500 and len(image.getcolors(maxcolors=1 << 20)) > 50  # drawn, not blank
    red = tuple(int(html_report.I_RES_COLOR[i:i + 2], 16) for i in (1, 3, 5))
    assert sum(count for count, color in image.getcolors(maxcolors=1 << 20)
               if max(abs(a - b) for a, b in zip(color, red)) < 30) > 200  # the I_res line


def test_plot_draws_r_min_r_max_and_i_res_per_layer():
    from torch import nn

    def net() -> nn.Sequential:  # r_min 3, 7, 15, 31 at I_res 16
        return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=2, padding=1) for i in range(4)])

    result = rflint.analyze(net, input_res=16)
    [axes] = result.plot().axes
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert list(lines["r_min (I_min 31)"].get_ydata()) == [3, 7, 15, 31]
    assert list(lines["r_max"].get_ydata()) == [layer.r_max[0] for layer in result.layers]
    assert list(lines["I_res = 16"].get_ydata()) == [16, 16]


def test_a_fully_utilized_result_says_no_layer_is_flagged():
    result = rflint.analyze(lambda: __import__("torch").nn.Conv2d(3, 8, 3), input_res=16)
    page = result._repr_html_()
    assert "No layer is flagged." in page and re.search(r"<th>fully utilized[^<]*</th><td[^>]*>yes</td>", page)
