"""The Figure rflint's charts are drawn on (imports matplotlib: load it only to draw)."""

from __future__ import annotations

import io

from matplotlib.figure import Figure


class ChartFigure(Figure):
    """A matplotlib Figure that Jupyter shows as a PNG on its own. Figures made outside
    pyplot are shown by the inline backend only once pyplot has drawn a figure of its own;
    going through pyplot instead would register the chart with it (shown twice, kept alive)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()
