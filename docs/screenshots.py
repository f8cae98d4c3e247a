"""Draw the pictures in docs/ of the HTML report and of a notebook showing a Result.

The machine these were made on has no browser, so the pages are drawn with matplotlib
from what they contain: the report's own chart (``html_report.chart``), summary, fix and
layer table (with its source column), and for the notebook, the outputs of a notebook
really executed with nbclient: the ``_repr_html_`` cell's tables (its SVG chart drawn
again from the same Result) and the PNG that ``result.plot()`` produced, pasted as is.
Run from the repository root:

    PYTHONPATH=.:tests/shims python docs/screenshots.py
"""

from __future__ import annotations

import base64
import html
import io
import re
import sys
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import torchvision_ops  # noqa: F401  (this machine's torchvision wheel needs it; see tests/shims)
from rflint.report import html as html_report
from rflint.run.report_command import build_report

DOCS = Path(__file__).parent
WIDTH, DPI = 1280, 100
ROW = 18  # px per table row
INK, MUTED = "#1d2330", "#5a6375"
STATE_COLORS = {"unproductive": html_report.UNPRODUCTIVE_COLOR, "underutilized": html_report.UNDERUTILIZED_COLOR}


class Page:
    """A figure laid out top to bottom in pixels, like a page."""

    def __init__(self, height: int):
        self.height = height
        self.figure = Figure(figsize=(WIDTH / DPI, height / DPI), dpi=DPI, facecolor="white")
        self.y = 24

    def text(self, x: float, text: str, size: float = 11, advance: float = 0, **style) -> None:
        self.figure.text(x / WIDTH, 1 - self.y / self.height, text, fontsize=size, va="top",
                         color=style.pop("color", INK), **style)
        self.y += advance

    def axes(self, left: float, height: float, width: float | None = None):
        width = width or WIDTH - left - 40
        box = [left / WIDTH, 1 - (self.y + height) / self.height, width / WIDTH, height / self.height]
        self.y += height
        return self.figure.add_axes(box)

    def table(self, columns: list[tuple[str, float]], rows: list[tuple[str, list[str]]], size: float = 9) -> None:
        """Column (title, x) pairs; rows of (state, cells), coloured as the page colours them."""
        for title, x in columns:
            self.text(x, title, size=size, weight="bold")
        self.y += ROW + 2
        self.figure.add_artist(matplotlib.lines.Line2D([32 / WIDTH, 1 - 32 / WIDTH], [1 - (self.y - 4) / self.height] * 2,
                                                        color="#c9ced8", linewidth=1.5))
        for state, cells in rows:
            if state in STATE_COLORS:
                self.figure.add_artist(Rectangle((32 / WIDTH, 1 - (self.y + ROW - 3) / self.height),
                                                 1 - 64 / WIDTH, ROW / self.height, color=STATE_COLORS[state]))
            for (_, x), cell in zip(columns, cells):
                self.text(x, cell, size=size, family="monospace")
            self.y += ROW

    def save(self, path: Path) -> None:
        self.figure.savefig(path, dpi=DPI)
        print(f"wrote {path}")


LAYER_COLUMNS = [("#", 40), ("layer", 75), ("type", 290), ("kernel", 355), ("stride", 410), ("dilation", 465),
                 ("r_min", 530), ("r_max", 585), ("status", 640), ("source", 750)]


def table_rows(page_html: str) -> list[tuple[str, list[str]]]:
    """The layer table's rows as the HTML has them: (row class, cell texts)."""
    table = page_html[page_html.index('<table class="layers">'):]
    return [(state, [html.unescape(cell) for cell in re.findall(r"<td>([^<]*)</td>", cells)])
            for state, cells in re.findall(r'<tr(?: class="(\w+)")?>((?:<td>[^<]*</td>)+)</tr>', table)]


def summary_rows(page_html: str) -> list[tuple[str, str]]:
    found = re.findall(r"<tr><th>([^<]*)</th><td[^>]*>([^<]*)</td></tr>", page_html)
    return [(html.unescape(label), value) for label, value in found]


def report_picture() -> None:
    report = build_report("torchvision.models.mobilenetv3:mobilenet_v3_large", "224")
    page_html = html_report.render(report)
    (DOCS / "mobilenet_v3_large_report.html").write_text(page_html, encoding="utf-8")
    rows = table_rows(page_html)
    page = Page(height=700 + ROW * (len(rows) + 3))
    page.text(32, f"rflint report: {report.result.name} at 224 px", size=17, weight="bold", advance=30)
    page.text(32, report.spec, size=10, family="monospace", color=MUTED, advance=32)
    page.text(32, "Summary", size=13, weight="bold")
    page.text(330, "Proposed fix", size=13, weight="bold", advance=26)
    top = page.y
    for label, value in summary_rows(page_html)[:6]:
        page.text(40, label, size=9.5, color=MUTED)
        page.text(230, value, size=9.5, weight="bold", advance=ROW)
    page.y = top
    best = report.fixes[0]
    page.text(330, f"[{best.applicability}] {best.description}", size=10.5, weight="bold", advance=22)
    for edit in best.edits:
        page.text(345, f"{html_report.shown_path(edit.file)}:{edit.line}:{edit.column}  {edit.old} -> {edit.new}",
                  size=9.5, family="monospace", advance=20)
    page.text(345, "Other verified fixes: " + "; ".join(f.description.split(":")[0] for f in report.fixes[1:3]),
              size=9.5, color=MUTED, advance=ROW)
    page.y = top + 6 * ROW + 30
    page.text(32, "Receptive field per layer  (the chart spans the page)", size=13, weight="bold", advance=28)
    chart = page.axes(left=75, height=360)
    html_report._plot_axis(chart, report.result, report.fixed, 0, titled=False)
    page.y += 60
    page.text(32, "Layers  (source: the line that built each layer, where the linter points)", size=13,
              weight="bold", advance=28)
    page.table(LAYER_COLUMNS, rows, size=8.5)
    page.save(DOCS / "mobilenet_v3_large_report.png")


NOTEBOOK_SETUP = f"import sys\nsys.path.insert(0, {str(DOCS.parent / 'tests' / 'shims')!r})\nimport torchvision_ops"
NOTEBOOK_CELLS = [
    "import rflint, torchvision\n\nresult = rflint.analyze(torchvision.models.mobilenet_v3_large, input_res=224)",
    "result",
    "result.plot()",
]


def in_process_result():
    import torchvision

    import rflint

    return rflint.analyze(torchvision.models.mobilenet_v3_large, input_res=224)


def notebook_picture() -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)
                                               for source in (NOTEBOOK_SETUP, *NOTEBOOK_CELLS)])
    NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    shown = notebook.cells[2].outputs[0]["data"]["text/html"]
    plotted = next(o for o in notebook.cells[3].outputs if o["output_type"] == "execute_result")
    image = matplotlib.image.imread(io.BytesIO(base64.b64decode(plotted["data"]["image/png"])), format="png")
    rows = table_rows(shown)
    height = 700 + ROW * (len(rows) + 2) + int(image.shape[0] * (WIDTH - 160) / image.shape[1])
    page = Page(height=height)
    for number, source in enumerate(NOTEBOOK_CELLS[:2], start=1):
        page.text(32, f"In [{number}]:", size=10, family="monospace", color="#303f9f")
        page.text(110, source, size=10, family="monospace", advance=22 * (source.count("\n") + 1) + 6)
    page.text(32, "Out[2]:", size=10, family="monospace", color="#d84315")
    page.text(110, re.search(r"<strong>([^<]*)</strong>", shown)[1], size=11, weight="bold", advance=24)
    for label, value in summary_rows(shown)[:6]:
        page.text(120, label, size=9.5, color=MUTED)
        page.text(320, value, size=9.5, weight="bold", advance=ROW)
    page.y += 8
    chart = page.axes(left=160, height=300, width=WIDTH - 220)  # the chart of the cell's SVG, drawn again here
    html_report._plot_axis(chart, in_process_result(), None, 0, titled=False)
    page.y += 50
    page.text(110, "Flagged layers", size=10.5, weight="bold", advance=22)
    page.table([(title, x + 80) for title, x in LAYER_COLUMNS], rows, size=8.5)
    page.y += 20
    page.text(32, "In [3]:", size=10, family="monospace", color="#303f9f")
    page.text(110, NOTEBOOK_CELLS[2], size=10, family="monospace", advance=24)
    page.text(32, "Out[3]:", size=10, family="monospace", color="#d84315", advance=6)
    picture = page.axes(left=110, height=int(image.shape[0] * (WIDTH - 160) / image.shape[1]), width=WIDTH - 160)
    picture.imshow(image)
    picture.set_axis_off()
    page.save(DOCS / "notebook_result.png")


if __name__ == "__main__":
    wanted = sys.argv[1:] or ["report", "notebook"]
    if "report" in wanted:
        report_picture()
    if "notebook" in wanted:
        notebook_picture()
