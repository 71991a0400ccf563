"""matplotlib, imported only when a picture is drawn, so ``import convscope`` needs NumPy alone.

Figures are made with ``matplotlib.figure.Figure`` directly rather than pyplot:
they render with the Agg canvas, need no display, and leave pyplot's global
state (and a notebook's chosen backend) untouched.
"""

from __future__ import annotations

import sys

INSTALL_HINT = "Pictures need matplotlib: pip install 'convscope[viz]'"


def new_figure(**kwargs):
    """A fresh ``matplotlib.figure.Figure`` drawn by the Agg canvas; a clear ImportError without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def colors():
    """``matplotlib.colors`` (norms for honest colour scales)."""
    try:
        import matplotlib.colors
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return matplotlib.colors


def close(fig) -> None:
    """Release a figure: only pyplot keeps figures alive, and only if the caller made this one with it."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


def colormap(name: str, bad=None):
    """A copy of colour map ``name``; ``bad`` colours the NaN cells (gaps between mosaic tiles)."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    cmap = matplotlib.colormaps[name]
    return cmap if bad is None else cmap.with_extremes(bad=bad)


def colour_bar(fig, mappable, **kwargs):
    """``fig.colorbar`` whose ticks read as plain numbers ("6e-06"), without matplotlib's separate "1e-6"
    multiplier, which lands on top of neighbouring labels."""
    try:
        from matplotlib.ticker import FuncFormatter
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    bar = fig.colorbar(mappable, **kwargs)
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    return bar
