"""The lesson-specific pictures that ``convscope.viz`` does not draw: labelled panels of 2-D arrays,
one curve per run, and per-layer statistics. matplotlib Figures (Agg), saved with ``viz.save_figure``.

Colour scales follow ``viz``: signed values on a diverging map symmetric around zero
(white = 0), non-negative ones from 0 to their maximum; every panel has its own colour bar
unless panels are asked to share one scale.
"""

from __future__ import annotations

import math

import numpy as np

from ..viz.figures import value_norm


def new_figure(**kwargs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def panels_figure(panels, title, columns=4, note=None, shared_scale=False, size=2.6, groups=()):
    """2-D arrays side by side: ``panels`` is a list of (caption, array). With ``shared_scale`` all panels
    use one colour scale (so equal colours mean equal values across them), else each has its own bar;
    ``groups``: tuples of panel positions that share one scale among themselves (each still with its bar).
    An (h, w, 3) array with values in [0, 1] is drawn as an RGB picture. ``size``: inches per panel."""
    rows = math.ceil(len(panels) / columns)
    cols = min(columns, len(panels))
    fig = new_figure(figsize=(size * cols + 0.6 + 0.6 * shared_scale, (size - 0.1) * rows + 0.9))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    shared = value_norm(np.concatenate([np.ravel(a) for _, a in panels])) if shared_scale else None
    by_group = {i: value_norm(np.concatenate([np.ravel(panels[j][1]) for j in group]))
                for group in groups for i in group}
    for i, (ax, (caption, array)) in enumerate(zip(axes.flat, panels)):
        array = np.asarray(array, dtype=np.float64)
        ax.set_title(caption, fontsize=8)
        if array.ndim == 3:
            ax.imshow(array, interpolation="nearest")
            continue
        norm, cmap = shared or by_group.get(i) or value_norm(array)
        image = ax.imshow(array, cmap=cmap, norm=norm, interpolation="nearest")
        if not shared_scale:
            fig.colorbar(image, ax=ax, shrink=0.8)
    if shared_scale:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="value (one scale for all panels)")
    fig.suptitle(title)
    if note:
        fig.supxlabel(note, fontsize=8)
    return fig


def runs_figure(curves: dict, title, ylabel, xlabel="training step", log=False, summary=None):
    """One line per run: ``curves`` maps a label to its values (one per step or epoch). The legend gives each run's
    last value, or, with ``summary = (words, {label: value})``, that value, e.g. ("mean of the last 10 steps", ...):
    the same number a table beside the picture shows."""
    fig = new_figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    for label, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, "o-" if len(values) < 20 else "-", markersize=4,
                label=f"{label} ({summary[0]} {summary[1][label]:.3g})" if summary else
                f"{label} (last {values[-1]:.3g})", linewidth=1.2)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(title)
    return fig


def layer_stats_figure(stats: dict, layer_names, title):
    """Per-layer statistics for several runs: ``stats[run][panel]`` is one value per layer, one panel per key
    (log scale; an exact 0 is drawn at a floor line below the smallest positive value)."""
    panels = list(next(iter(stats.values())))
    fig = new_figure(figsize=(5.2 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    positive = [v for run in stats.values() for p in panels for v in run[p] if v > 0]
    floor = min(positive) / 10 if positive else 1e-12
    for ax, panel in zip(axes, panels):
        for run, values in stats.items():
            ax.plot(range(len(layer_names)), [max(v, floor) for v in values[panel]], "o-", label=run, markersize=4)
        ax.axhline(floor, color="0.5", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_xticks(range(len(layer_names)), layer_names, rotation=20, fontsize=8)
        ax.set_title(panel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.supxlabel(f"log scale; an exact 0 is drawn on the dotted line at {floor:.1e}", fontsize=8)
    return fig


def activation_figure(z, y, title):
    """A pre-activation map, the activated map, and every (z, y) pair as a point: one curve, element by element."""
    fig = new_figure(figsize=(11, 3.6))
    axes = fig.subplots(1, 3)
    for ax, (caption, array) in zip(axes[:2], (("pre-activation z", z), ("output y = activation(z)", y))):
        norm, cmap = value_norm(array)
        image = ax.imshow(array, cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(caption, fontsize=9)
        ax.set_axis_off()
        fig.colorbar(image, ax=ax, shrink=0.8)
    axes[2].plot(np.ravel(z), np.ravel(y), ".", markersize=3, alpha=0.5)
    axes[2].axhline(0, color="0.6", linewidth=0.6)
    axes[2].axvline(0, color="0.6", linewidth=0.6)
    axes[2].set_xlabel("z (each cell of the map)")
    axes[2].set_ylabel("y")
    axes[2].set_title(f"all {np.size(z)} cells: y against z", fontsize=9)
    fig.suptitle(title)
    return fig
