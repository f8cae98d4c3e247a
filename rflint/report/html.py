"""One self-contained HTML page about one model (``rflint report MODEL_SPEC`` writes it).

The page shows I_min, I_max and I_res, a chart of r_min and r_max per layer in depth order
with the I_res line across it, the layer table (unproductive rows red, underutilized
orange, as in the paper's figure) and the proposed fix with its r_min curve. The chart is
matplotlib's SVG inlined in the page; the page loads nothing (its Content-Security-Policy
forbids it), so it can be mailed, archived or opened offline.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from pathlib import Path

from rflint.core.diagnostics import Fix
from rflint.core.layers import Layer
from rflint.core.result import Result

UNPRODUCTIVE_COLOR, UNDERUTILIZED_COLOR = "#f4a3a3", "#fbc98e"  # table rows and chart bands
R_MIN_COLOR, R_MAX_COLOR, FIXED_COLOR, I_RES_COLOR = "#1f5fbf", "#8a9bb8", "#1a9641", "#c0282d"


@dataclass
class Report:
    """Everything the page shows; ``fixed`` is the model re-analysed with ``fixes[0]`` applied."""

    spec: str
    result: Result
    fixes: tuple[Fix, ...] = ()  # best first; empty when fully utilized or not searched
    fixed: Result | None = None


def summary_line(report: Report) -> str:
    result = report.result
    verdict = "fully utilized" if result.fully_utilized() else "not fully utilized"
    line = (f"{result.name} I_min={_size(result.i_min)} I_max={_size(result.i_max)} "
            f"I_res={_size(result.input_res)}: {verdict}")
    if report.fixed is not None:
        line += f"; fix: {report.fixes[0].description}"
    elif report.fixes:
        line += "; no verified literal change (the report says what to do by hand)"
    return line


def render(report: Report) -> str:
    result = report.result
    title = f"rflint report: {result.name} at {_size(result.input_res)} px"
    return PAGE.format(
        title=_e(title),
        style=STYLE,
        spec=_e(report.spec),
        summary=summary_table(result),
        chart=chart_svg(report),
        fix=_fix_section(report),
        table=layer_table(result),
    )


def summary_table(result: Result) -> str:
    utilized = result.fully_utilized()
    rows = [
        ("I_res (input resolution)", _size(result.input_res), ""),
        ("I_min (largest r_min)", _size(result.i_min), "" if utilized else "bad"),
        ("I_max (largest r_max)", _size(result.i_max), ""),
        ("fully utilized (I_min &lt; I_res)", "yes" if utilized else "no", "" if utilized else "bad"),
        ("unproductive layers", str(len(result.unproductive())), "unproductive"),
        ("underutilized layers", str(len(result.underutilized())), "underutilized"),
    ]
    cells = "".join(f'<tr><th>{label}</th><td class="{cls}">{value}</td></tr>' for label, value, cls in rows)
    return f'<table class="summary">{cells}</table>'


def _fix_section(report: Report) -> str:
    from rflint.report.show_fixes import si_units

    result = report.result
    if result.fully_utilized():
        return "<p>The model is fully utilized at this resolution: no fix is needed.</p>"
    if not report.fixes:
        return "<p>Fix search skipped (<code>--no-fix</code>).</p>"
    best, alternatives = report.fixes[0], report.fixes[1:]
    if not best.edits:
        return f'<p class="advice">No verified literal change: {_e(best.description)}</p>'
    edits = "".join(
        f"<li><code>{_e(shown_path(e.file))}:{e.line}:{e.column}</code> "
        f"<code>{_e(e.old)}</code> &rarr; <code>{_e(e.new)}</code></li>"
        for e in best.edits
    )
    figures = [("I_min", _size(result.i_min), _size(best.i_min_after))]
    if best.flops_before is not None:
        ratio = f" (&times;{best.flops_after / best.flops_before:.2f})" if best.flops_before else ""
        figures.append(("FLOPs", si_units(best.flops_before), si_units(best.flops_after) + ratio))
    if best.params_before is not None:
        figures.append(("params", si_units(best.params_before), si_units(best.params_after)))
    figure_rows = "".join(f"<tr><th>{name}</th><td>{before}</td><td>{after}</td></tr>"
                          for name, before, after in figures)
    shared = [m for m in best.models if m != result.name]
    shared_note = f"<p>The literal is shared: this also changes {_e(', '.join(shared))} (verified for each).</p>" \
        if shared else ""
    others = "".join(f"<li>{_e(f.description)} ({f.applicability})</li>" for f in alternatives)
    others_list = f"<p>Other verified fixes:</p><ul>{others}</ul>" if others else ""
    return (
        f'<p class="fix"><span class="badge {best.applicability}">{best.applicability}</span> '
        f"{_e(best.description)}</p><ul>{edits}</ul>{shared_note}"
        f'<table class="figures"><tr><th></th><th>before</th><th>after</th></tr>{figure_rows}</table>'
        f"{others_list}"
    )


TABLE_COLUMNS = ("#", "layer", "type", "kernel", "stride", "dilation", "r_min", "r_max", "status", "source")


def layer_table(result: Result, flagged_only: bool = False) -> str:
    """A row per layer (or per flagged layer); ``source`` is the line that built it, where
    the linter points."""
    from rflint.core.rules.base import construction_site

    status = {layer: "unproductive" for layer in result.unproductive()}
    status.update({layer: "underutilized" for layer in result.underutilized()})
    model_file = result.source.file if result.source else None
    head = "".join(f"<th>{column}</th>" for column in TABLE_COLUMNS)
    rows = []
    for index, layer in enumerate(result.layers):
        state = status.get(layer, "")
        if flagged_only and not state:
            continue
        site = construction_site(layer, model_file)
        source = f"{shown_path(site.file)}:{site.line}" if site else ""
        cells = (index, layer.name, layer.op_type, _size(layer.kernel), _size(layer.stride),
                 _size(layer.dilation), _field(layer.r_min), _field(layer.r_max), state, source)
        row = "".join(f"<td>{_e(str(cell))}</td>" for cell in cells)
        rows.append(f'<tr class="{state}">{row}</tr>' if state else f"<tr>{row}</tr>")
    return f'<table class="layers"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def chart(result: Result, fixed: Result | None = None, width: float = 12):
    """r_min and r_max per layer (log scale: r_max grows geometrically), one panel per axis
    unless every axis has the same fields, with the I_res line and bands over the layers
    that are unproductive (red) or underutilized (orange): a matplotlib ``Figure`` outside
    pyplot, so nothing is shown twice or kept alive by a figure manager."""
    from rflint.report.plotting import ChartFigure

    axes = _distinct_axes(result, fixed)
    figure = ChartFigure(figsize=(width, 4.2 * len(axes)), layout="constrained")
    for panel, axis in zip(figure.subplots(len(axes), 1, squeeze=False)[:, 0], axes):
        _plot_axis(panel, result, fixed, axis, titled=len(axes) > 1)
    return figure


def chart_svg(report: Report) -> str:
    """The chart as inline SVG (text stays text, no date: the same model gives the same page)."""
    import matplotlib

    figure = chart(report.result, report.fixed)
    svg = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rflint", "font.size": 11}):
        figure.savefig(svg, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = svg.getvalue()
    return text[text.index("<svg"):]  # the XML prolog and DOCTYPE are not valid inside HTML


def _distinct_axes(result: Result, fixed: Result | None) -> list[int]:
    """Axis 0 alone when every axis has the same resolution and fields (square images)."""
    def per_axis(r: Result, axis: int):
        return r.input_res[axis], [(l.r_min[axis], l.r_max[axis]) for l in r.layers if l.bounded]

    runs = [r for r in (result, fixed) if r is not None]
    same = all(per_axis(r, axis) == per_axis(r, 0) for r in runs for axis in range(result.ndim))
    return [0] if same else list(range(result.ndim))


def _plot_axis(ax, result: Result, fixed: Result | None, axis: int, titled: bool) -> None:
    from matplotlib.ticker import LogLocator, NullLocator, StrMethodFormatter

    i_res = result.input_res[axis]
    depth = {layer.name: index for index, layer in enumerate(result.layers)}
    for layers, color in ((result.unproductive(), UNPRODUCTIVE_COLOR), (result.underutilized(), UNDERUTILIZED_COLOR)):
        for start, stop in _runs([layer in layers for layer in result.layers]):
            ax.axvspan(start - 0.5, stop - 0.5, color=color, alpha=0.45, linewidth=0)
    before = [layer for layer in result.layers if layer.bounded]
    ax.plot(*_curve(before, depth, axis, "r_max"), color=R_MAX_COLOR, linewidth=1.5, label="r_max")
    ax.plot(*_curve(before, depth, axis, "r_min"), color=R_MIN_COLOR, linewidth=3,
            marker="o", markersize=3.5, label=f"r_min (I_min {result.i_min[axis]})")
    if fixed is not None:
        after = [layer for layer in fixed.layers if layer.bounded and layer.name in depth]
        ax.plot(*_curve(after, depth, axis, "r_min"), color=FIXED_COLOR, linewidth=2, linestyle="--",
                label=f"r_min after fix (I_min {fixed.i_min[axis]})")
    ax.axhline(i_res, color=I_RES_COLOR, linewidth=2, label=f"I_res = {i_res}")
    crossing = next((layer for layer in before if layer.r_min[axis] >= i_res), None)
    if crossing is not None:
        ax.annotate(f"r_min \u2265 I_res from layer {depth[crossing.name]} ({crossing.name})",
                    (depth[crossing.name], crossing.r_min[axis]),
                    xytext=(-40, 30), textcoords="offset points", ha="right", color=I_RES_COLOR,
                    arrowprops={"arrowstyle": "->", "color": I_RES_COLOR})
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.margins(y=0.12)
    ax.set_xlim(-0.5, len(result.layers) - 0.5)
    ax.set_xlabel("layer (depth order)")
    ax.set_ylabel("receptive field (px)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right")
    if titled:
        ax.set_title(f"axis {axis}")


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """[start, stop) index ranges of consecutive True flags: one band, not one per layer."""
    runs, start = [], None
    for index, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index))
            start = None
    return runs


def _curve(layers: list[Layer], depth: dict[str, int], axis: int, field: str) -> tuple[list[int], list[int]]:
    """x (depth) and y of bounded layers only: a global field (squeeze-excitation, a head
    after global pooling) has no size to plot, and the curve runs on past it."""
    return [depth[layer.name] for layer in layers], [getattr(layer, field)[axis] for layer in layers]


def _size(values) -> str:
    from rflint.core.rules.base import fmt_size

    return fmt_size(tuple(map(str, values)))


def _field(values: tuple[int, ...] | None) -> str:
    return "global" if values is None else _size(values)


def shown_path(file: str) -> str:
    """Relative to the working directory when under it, as the linter prints paths; a
    package module elsewhere (an installed torchvision) by its package path."""
    from rflint.source.literals import import_root

    root, parts = import_root(file)
    for base in (Path.cwd(), Path(root) if parts else None):
        if base is not None and Path(file).is_relative_to(base):
            return str(Path(file).relative_to(base))
    return file


def _e(text: str) -> str:
    return html.escape(text, quote=True)


STYLE = f"""
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 14px; margin: 24px 32px; color: #1d2330; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }} h2 {{ font-size: 17px; margin: 22px 0 8px; }}
.spec {{ color: #5a6375; margin: 0 0 12px; }}
.top {{ display: flex; gap: 48px; align-items: flex-start; flex-wrap: wrap; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ padding: 2px 10px; text-align: left; border-bottom: 1px solid #e3e6ec; }}
.summary th, .figures th {{ font-weight: normal; color: #5a6375; }}
.summary td {{ font-weight: 600; }}
td.bad {{ color: {I_RES_COLOR}; }}
.layers {{ width: 100%; font-size: 12px; }} .layers td {{ font-family: ui-monospace, monospace; }}
.layers thead th {{ position: sticky; top: 0; background: #fff; border-bottom: 2px solid #c9ced8; }}
svg {{ width: 100%; height: auto; }}  /* the chart spans the page */
.badge {{ padding: 1px 8px; border-radius: 8px; color: #fff; font-size: 12px; background: #5a6375; }}
.badge.safe {{ background: {FIXED_COLOR}; }} .badge.unsafe {{ background: #d9822b; }}
.fix {{ font-weight: 600; }} ul {{ margin: 4px 0 8px; }}
.legend span {{ padding: 1px 8px; font-size: 13px; }}
.unproductive {{ background: {UNPRODUCTIVE_COLOR}; }} .underutilized {{ background: {UNDERUTILIZED_COLOR}; }}
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1>{title}</h1>
<p class="spec"><code>{spec}</code></p>
<div class="top">
<section><h2>Summary</h2>{summary}</section>
<section><h2>Proposed fix</h2>{fix}</section>
</div>
<h2>Receptive field per layer</h2>
{chart}
<h2>Layers</h2>
<p class="legend"><span class="unproductive">unproductive: its input already has r_min &ge; I_res</span> <span class="underutilized">underutilized: its own r_min &ge; I_res</span></p>
{table}
</body>
</html>
"""
