"""A ``Result`` in Jupyter: ``_repr_html_`` (summary, chart, flagged layers) and ``plot()``.

The HTML is a fragment in a notebook's output cell, so its style is scoped to the
fragment's own class (the notebook's cells keep theirs) and the chart is inline SVG: the
output survives saving, nbconvert and GitHub's notebook viewer, which run no scripts.
"""

from __future__ import annotations

import html
import importlib.util

from rflint.core.result import Result

STYLE = """
.rflint-result table {{ border-collapse: collapse; font-size: 13px; margin: 4px 0 10px; }}
.rflint-result th, .rflint-result td {{ padding: 2px 10px; text-align: left; border-bottom: 1px solid #e3e6ec; }}
.rflint-result .summary th {{ font-weight: normal; }}
.rflint-result td.bad {{ color: {bad}; font-weight: 600; }}
.rflint-result .layers td {{ font-family: monospace; }}
.rflint-result tr.unproductive, .rflint-result td.unproductive {{ background: {unproductive}; color: #1d2330; }}
.rflint-result tr.underutilized, .rflint-result td.underutilized {{ background: {underutilized}; color: #1d2330; }}
.rflint-result svg {{ width: 100%; max-width: 1100px; height: auto; }}
"""


def result_html(result: Result) -> str:
    """What Jupyter shows for a ``Result``: the summary, the r_min/r_max chart against
    I_res (when matplotlib is installed) and the flagged layers with their source lines."""
    from rflint.report import html as html_report

    style = STYLE.format(bad=html_report.I_RES_COLOR, unproductive=html_report.UNPRODUCTIVE_COLOR,
                         underutilized=html_report.UNDERUTILIZED_COLOR)
    title = f"rflint: {html.escape(result.name)} at {html_report._size(result.input_res)} px"
    if importlib.util.find_spec("matplotlib") is not None:
        chart = html_report.chart_svg(html_report.Report(result.name, result))
    else:
        chart = "<p>(the chart needs matplotlib: pip install 'rflint[report]')</p>"
    flagged = len(result.unproductive()) + len(result.underutilized())
    layers = html_report.layer_table(result, flagged_only=True) if flagged else "<p>No layer is flagged.</p>"
    return (f'<div class="rflint-result"><style>{style}</style><strong>{title}</strong>'
            f"{html_report.summary_table(result)}{chart}"
            f"<strong>Flagged layers</strong>{layers}</div>")


def plot(result: Result, fixed: Result | None = None):
    """The r_min/r_max chart as a matplotlib ``Figure`` (``fixed``: a second curve, e.g. the
    model with a fix applied)."""
    from rflint.report.html import chart

    return chart(result, fixed, width=10)
