"""A layer's filters through training, from a run folder's snapshots (``filters/epoch_NNN.npz``).

Epoch 0 is the initialization; epoch k the weights after k epochs. One colour
limit is used for every epoch (the largest |weight| ever reached), so a filter
that grows looks stronger rather than being re-scaled away.
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..saving import atomic_write
from . import _mpl
from .figures import DIVERGING, GAP, MAX_TILES, filters_figure, mosaic, symmetric_limit

SNAPSHOT = re.compile(r"^epoch_(\d{3,})\.npz$")


def load_snapshots(run_dir, layer=None):
    """``(layer, [(epoch, kernel, bias or None), ...])`` in epoch order; ``layer`` defaults to the first conv layer.

    Snapshots come from a folder anyone may have edited, so each is read by ``datasets.npz.NpzArchive`` in two
    passes: every header first (float arrays only, a 4-D kernel of one shape in every epoch, a bias of one
    value per filter, data exactly filling its member), then the memory budget checked on the total they
    declare, and only then the data, one file open at a time."""
    from .. import budget
    from ..datasets.npz import NpzArchive
    from ..errors import DataFileError

    floats = (np.float16, np.float32, np.float64)
    folder = os.path.join(run_dir, "filters")
    if not os.path.isdir(folder):
        raise ValueError(f"{run_dir!r} is not a run folder with filter snapshots (no filters/ folder)")
    files = sorted((int(m.group(1)), name) for name in os.listdir(folder) if (m := SNAPSHOT.match(name)))
    if not files:
        raise ValueError(f"{folder!r} holds no epoch_NNN.npz snapshots")

    def declared(name):
        """(kernel header, bias header or None) of ``layer`` in snapshot ``name``, checked."""
        nonlocal layer
        with NpzArchive(os.path.join(folder, name)) as npz:
            kernels = [key[: -len("/kernel")] for key in npz.members if key.endswith("/kernel")]
            layer = kernels[0] if layer is None and kernels else layer
            if f"{layer}/kernel" not in npz.members:
                raise ValueError(f"{name} has no kernel for layer {layer!r}; layers there: {', '.join(kernels)}")
            kernel = npz.header(f"{layer}/kernel", floats)
            bias = npz.header(f"{layer}/bias", floats) if f"{layer}/bias" in npz.members else None
        if len(kernel.shape) != 4 or (bias is not None and bias.shape != kernel.shape[-1:]):
            raise ValueError(f"{name}: {layer}/kernel has shape {kernel.shape} and bias "
                             f"{None if bias is None else bias.shape}; expected (height, width, channels, filters) and "
                             f"(filters,)")
        return kernel, bias

    headers = [declared(name) for _, name in files]
    if len({kernel.shape for kernel, _ in headers}) != 1:
        raise ValueError(f"the snapshots of {layer!r} do not all have the same kernel shape")
    total = sum(kernel.nbytes + (0 if bias is None else bias.nbytes) for kernel, bias in headers)
    budget.check(total, f"the filter snapshots of {layer!r} in {folder}", error=DataFileError)
    snapshots = []
    for (epoch, name), (kernel, bias) in zip(files, headers):
        with NpzArchive(os.path.join(folder, name)) as npz:
            now = npz.header(f"{layer}/kernel", floats), None if bias is None else npz.header(f"{layer}/bias", floats)
            if now != (kernel, bias):  # the file was replaced between the two passes
                raise DataFileError(f"{name} changed while it was being read")
            snapshots.append((epoch, npz.read(f"{layer}/kernel", floats),
                              None if bias is None else npz.read(f"{layer}/bias", floats)))
    return layer, snapshots


def epoch_label(epoch: int) -> str:
    return "initialization" if epoch == 0 else f"after epoch {epoch}"


def evolution_figure(snapshots, layer: str, title=None):
    """One picture: a row per snapshot (initialization first), a column per filter, one symmetric colour scale.
    Deeper layers (several input channels) show input channel 0, as the note says."""
    kernels = np.stack([kernel for _, kernel, _ in snapshots]).astype(np.float64)
    channels, count = kernels.shape[3:]
    visible = min(count, MAX_TILES)
    limit = symmetric_limit(kernels)
    rows = len(snapshots)
    image, row_centres, col_centres = mosaic(kernels[:, :, :, 0, :visible].transpose(0, 3, 1, 2))
    fig = _mpl.new_figure(figsize=(visible * 0.3 + 3.2, rows * 0.3 + 1.8), layout="constrained")
    ax = fig.add_subplot()
    shown_image = ax.imshow(image, cmap=_mpl.colormap(DIVERGING, bad=GAP), vmin=-limit, vmax=limit,
                            interpolation="nearest")
    ax.set_xticks(col_centres, [str(f) for f in range(visible)], fontsize=6)
    ax.set_yticks(row_centres, ["init" if e == 0 else f"epoch {e}" for e, _, _ in snapshots], fontsize=7)
    ax.tick_params(length=0, labeltop=True)
    ax.set_xlabel("filter")
    _mpl.colour_bar(fig, shown_image, ax=ax, shrink=0.9, label="weight")
    notes = [f"colour: weight, one scale for all epochs, symmetric around 0 (white = 0), limits ±{limit:.3g}"]
    if channels > 1:
        notes.append(f"input channel 0 of {channels}")
    if visible < count:
        notes.append(f"filters 0-{visible - 1} of {count}")
    fig.suptitle(title or f"{layer}: filters from initialization through epoch {snapshots[-1][0]}")
    fig.supxlabel("; ".join(notes), fontsize=8)
    return fig


def save_evolution_gif(snapshots, layer: str, path, frame_ms: int = 600, progress=None) -> str:
    """An animated GIF, one frame per snapshot (``filters_figure`` on the shared colour limit), written atomically.
    ``progress(done, total)``, when given, is called after each frame is drawn."""
    from PIL import Image

    limit = symmetric_limit(np.stack([kernel for _, kernel, _ in snapshots]))
    frames = []
    for epoch, kernel, bias in snapshots:
        fig = filters_figure(kernel, title=f"{layer}: {epoch_label(epoch)}", bias=bias, vmax=limit)
        fig.canvas.draw()
        frames.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB"))
        _mpl.close(fig)
        if progress is not None:
            progress(len(frames), len(snapshots))
    # The last frame lingers so the trained filters can be read before the loop restarts.
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * 4]
    with atomic_write(path) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path
