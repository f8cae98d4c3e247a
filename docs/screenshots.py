"""Screenshot, in headless Chromium, the HTML report and a notebook showing a Result.

The report is the page ``rflint report`` writes for torchvision's MobileNetV3 large; the
notebook is executed with nbclient and its outputs (the ``_repr_html_`` cell's HTML and the
PNG ``result.plot()`` returned) are laid out as a notebook shows them, then screenshotted.
Run from the repository root (Chromium on ``PATH``, the machine offline is fine):

    PYTHONPATH=.:tests/shims python docs/screenshots.py
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
WIDTH = 1280


def screenshot(page: Path, picture: Path, height: int) -> None:
    """Chromium cut off from the network and any profile, as tests/test_html_report.py runs it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("docs/screenshots.py: no chromium or chromium-browser on PATH")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={picture}", f"--window-size={WIDTH},{height}",
             page.as_uri()],
            capture_output=True, timeout=120, check=True,
        )


def report_picture() -> None:
    page = DOCS / "mobilenet_v3_large_report.html"
    subprocess.run([sys.executable, "-m", "rflint", "report", "torchvision.models.mobilenetv3:mobilenet_v3_large",
                    "--input-res", "224", "-o", str(page)], check=True, cwd=REPO)
    screenshot(page, DOCS / "mobilenet_v3_large_report.png", height=2300)


NOTEBOOK_SETUP = f"import sys\nsys.path.insert(0, {str(REPO / 'tests' / 'shims')!r})\nimport torchvision_ops"
NOTEBOOK_CELLS = [
    "import rflint, torchvision\n\nresult = rflint.analyze(torchvision.models.mobilenet_v3_large, input_res=224)",
    "result",
    "result.plot()",
]
NOTEBOOK_STYLE = """
body { font-family: sans-serif; margin: 24px 32px; color: #1d2330; }
.cell { display: grid; grid-template-columns: 80px 1fr; margin: 10px 0; }
.prompt { font-family: monospace; font-size: 13px; padding-top: 6px; }
.in { color: #303f9f; } .out { color: #d84315; }
pre { margin: 0; padding: 6px 10px; background: #f5f5f5; border: 1px solid #e0e0e0; font-size: 13px; }
img { max-width: 1100px; }
"""


def notebook_picture() -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)
                                               for source in (NOTEBOOK_SETUP, *NOTEBOOK_CELLS)])
    NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    shown = notebook.cells[2].outputs[0]["data"]["text/html"]
    plotted = next(o for o in notebook.cells[3].outputs if o["output_type"] == "execute_result")
    outputs = [None, shown, f'<img src="data:image/png;base64,{plotted["data"]["image/png"]}">']
    cells = []
    for number, (source, output) in enumerate(zip(NOTEBOOK_CELLS, outputs), start=1):
        cells.append(f'<div class="cell"><div class="prompt in">In [{number}]:</div><pre>{html.escape(source)}</pre></div>')
        if output is not None:
            cells.append(f'<div class="cell"><div class="prompt out">Out[{number}]:</div><div>{output}</div></div>')
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "notebook.html"
        page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{NOTEBOOK_STYLE}</style></head>"
                        f"<body>{''.join(cells)}</body></html>")
        screenshot(page, DOCS / "notebook_result.png", height=1450)


if __name__ == "__main__":
    wanted = sys.argv[1:] or ["report", "notebook"]
    if "report" in wanted:
        report_picture()
    if "notebook" in wanted:
        notebook_picture()
