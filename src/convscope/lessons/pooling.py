"""Lesson: why we pool, and how a pooling layer, which learns nothing, routes the gradient."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import activations, backend
from ..arraymath.reference import avg_pool2d_backward_loops, max_pool2d_backward_loops
from ..layers import AveragePooling2D, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from . import plots
from ..models import Model
from .lab import float64, float64_copy, max_abs, type_of

POOLING_LAYERS = (MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D)
WINDOW_POOLS = (MaxPooling2D, AveragePooling2D)
# Where Keras 3's own gradients for tied windows are kept (made by scripts/make_keras_pool_ties.py): in the source
# checkout, next to the tests that use them too.
KERAS_TIES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "keras_pool_ties"
SHIFT_LIMIT = 0.9   # the pooled maps' change under a 1-pixel shift is at most this fraction of the conv maps'
PROBE_SIDE = 48     # receptive fields are measured with impulses on the central 48 x 48 pixels at most

NAME = "pooling"
TITLE = "Pooling learns nothing: no parameters, the gradient is routed or shared"
QUESTION = "Why do we pool, and how does the gradient get back through a layer that learns nothing?"
EXPLANATION = """
Why pool. A conv layer's maps are about as large as its input (the Keras convnet's first
layer makes 32 maps of 26 x 26 from one 28 x 28 digit). A pooling window of 2 x 2 with
stride 2 keeps one value per window, and:

  the maps shrink   4 times fewer values for the next layer to compute, store and read;
  the receptive field grows   a unit's receptive field is the patch of input pixels it depends
                    on. Pooling widens it by (k - 1) cells of its input and doubles the spacing of
                    neighbouring units, so the next conv's 3 x 3 window spans twice the distance
                    on the digit: with pooling in between, each of its units sees a larger part;
  small shifts matter less   max pooling keeps a window's largest value wherever it sits in the
                    window, so a feature that moves by one pixel often leaves the pooled map as it
                    was, while the conv maps move with it (a conv layer is shift-equivariant, not
                    shift-invariant).

The experiment measures all three on the model: the map sizes; the receptive field of a unit
before and after the model's first pooling layer and of the conv after it, by sending
one-pixel impulses through a copy of the model's own layers with every weight set to 1, every
bias to 0 and no activations (every path open, nothing cancels), against the rule
r_out = r_in + (k - 1)·j_in, j_out = s·j_in (j: the spacing of neighbouring units, in pixels);
and how much the maps change when the digits move by one pixel.

What pooling learns: nothing. Each window is summarised by a fixed rule, max or mean, so the
layer has zero parameters, and backpropagation only routes the upstream gradient into the windows:

  max pooling      the window's whole gradient goes to its largest cell, the others get 0.
                   When several cells tie (MNIST's zero background after ReLU makes whole
                   windows tie), convscope gives it to the first of them in row-major order.
                   Keras 3 does the same on its torch backend: the experiment checks it against
                   the gradients Keras computed on an input full of ties
                   (tests/fixtures/keras_pool_ties, made by scripts/make_keras_pool_ties.py).
  average pooling  each of a window's k cells gets 1/k of its gradient (with padding="same",
                   k counts the window's real cells only).
  overlapping windows (stride smaller than the window, e.g. 3 x 3 windows every 2 cells): a
                   cell in several windows receives the sum of what each sends it: for average
                   pooling 1/k of the gradient of every window holding it, so 1/k per cell holds
                   only for windows that do not overlap; for max pooling the gradient of every
                   window whose (first) maximum it is.

Max pooling only selects, so it commutes with any non-decreasing activation:
max(relu(z)) == relu(max(z)), exactly. Average pooling does not: the mean of rectified values
is not the rectified mean. convscope's training loop exploits this (src/convscope/fusion.py):
a ReLU layer followed by MaxPooling2D pools the pre-activation first and applies ReLU to a map
four times smaller, the same numbers bit for bit; model.trace runs the layers one by one, so
every map stays visible.

The experiment pools the first conv layer's real maps (model.trace) with both layers, with 2 x 2
windows and with overlapping 3 x 3 windows of stride 2, sends a random upstream gradient back
(the routing rule does not depend on where it comes from), and checks each claim against the
plain loops of arraymath/reference.py; then compares the model's fused predictions with the
layer-by-layer trace.
"""


def experiment(lab):
    model = float64_copy(lab.model())
    (_, _), (x_test, _) = lab.data()
    x = x_test[: 8 if lab.fast else 64]
    conv = lab.conv_layers(model)[0]
    relu = activations.get("relu")
    rng = backend.global_rng()
    with float64():
        records = model.trace(x)
        z = next(r for r in records if r.name == conv.name).preactivation      # real maps, signs and all
        maps = relu(z)
        max_pool, avg_pool = MaxPooling2D(2, name="new_max_pool"), AveragePooling2D(2, name="new_avg_pool")
        pooled = max_pool(maps)
        avg_pool(maps)
        upstream = rng.standard_normal(pooled.shape)
        max_dx, avg_dx = max_pool.backward(upstream), avg_pool.backward(upstream)
        fused = model.predict(x, verbose=0)

    why_pool(lab, model, records, x)

    pools = [layer for layer in model.layers if type(layer) in POOLING_LAYERS] + [max_pool, avg_pool]
    lab.number("pooling layers counted", ", ".join(f"{p.name}: {p.count_params()}" for p in pools))
    lab.check("parameters in all pooling layers (the model's and two new ones)",
              sum(p.count_params() for p in pools), "==", 0)

    # Every 2x2 window on its own last axis: (N, OH, OW, C, 4).
    cells, grads, avg_grads = (to_windows(a, pooled.shape) for a in (maps, max_dx, avg_dx))
    receiving = (grads != 0).sum(axis=-1)
    is_max = cells == cells.max(axis=-1, keepdims=True)
    ties = int((is_max.sum(axis=-1) > 1).sum())
    lab.number("max pooling: 2x2 windows", f"{receiving.size:,}, of which {ties:,} have their maximum in several cells "
               "(mostly all-zero background after ReLU)")
    lab.check("max pooling: windows where more than one cell receives gradient", int((receiving > 1).sum()), "==", 0)
    lab.check("max pooling: cells receiving gradient that are not their window's max",
              int((grads != 0)[~is_max].sum()), "==", 0)
    first = np.argmax(is_max, axis=-1)          # the first maximal cell, row-major in the window
    lab.check("max pooling, tied windows: those whose gradient is not on their first maximal cell",
              int(((np.argmax(grads != 0, axis=-1) != first) & (is_max.sum(axis=-1) > 1) & (receiving == 1)).sum()),
              "==", 0)
    lab.check("max pooling: max |window's gradient sum - upstream gradient|", max_abs(grads.sum(axis=-1), upstream), "==", 0)
    lab.check("average pooling: max |cell gradient - upstream / 4|", max_abs(avg_grads, upstream[..., None] / 4), "<=", 1e-15)
    overlapping(lab, maps, rng)
    keras_ties(lab)

    max_after, max_before = max_pool(relu(z)), relu(max_pool(z))
    avg_after, avg_before = avg_pool(relu(z)), relu(avg_pool(z))
    differ = avg_after != avg_before
    lab.check("max(relu(z)) vs relu(max(z)): cells that differ (bit for bit)", int((max_after != max_before).sum()), "==", 0)
    lab.number("avg(relu(z)) vs relu(avg(z)): largest difference", max_abs(avg_after, avg_before))
    lab.check("avg(relu(z)) vs relu(avg(z)): fraction of windows that differ", differ.mean(), ">=", 0.01)
    lab.check("model.predict (fused, pool first) vs model.trace (layer by layer): max |difference|",
              max_abs(fused, records[-1].output), "==", 0)

    f = int(differ.sum(axis=(0, 1, 2)).argmax())
    lab.picture("pooling_relu.png", plots.panels_figure, [
        (f"pre-activation z, map {f}", z[0, :, :, f]),
        ("max pool of relu(z)", max_after[0, :, :, f]),
        ("relu of max pool(z)", max_before[0, :, :, f]),
        ("avg pool of relu(z)", avg_after[0, :, :, f]),
        ("relu of avg pool(z)", avg_before[0, :, :, f]),
        ("difference of the two averages", avg_after[0, :, :, f] - avg_before[0, :, :, f]),
    ], f"{conv.name}, map {f}: max pooling commutes with ReLU, average pooling does not", columns=3)
    # The 8x8 patch (4x4 windows) where the map is busiest, so the arg-max cells are visible.
    r, c = max(((r, c) for r in range(0, maps.shape[1] - 7, 2) for c in range(0, maps.shape[2] - 7, 2)),
               key=lambda rc: maps[0, rc[0] : rc[0] + 8, rc[1] : rc[1] + 8, f].sum())
    patch = np.s_[0, r : r + 8, c : c + 8, f]
    lab.picture("pooling_gradients.png", plots.panels_figure, [
        (f"relu(z), rows {r}-{r + 7}, columns {c}-{c + 7}", maps[patch]),
        ("upstream gradient, one per window", upstream[0, r // 2 : r // 2 + 4, c // 2 : c // 2 + 4, f]),
        ("max pooling: dL/dx", max_dx[patch]),
        ("average pooling: dL/dx", avg_dx[patch]),
    ], f"map {f}: max pooling routes each 2x2 window's gradient to its max; average pooling shares it", columns=4)


# -- why we pool ---------------------------------------------------------------------------------------


def why_pool(lab, model, records, x):
    """The three reasons, measured: the maps shrink, the receptive field grows, a 1-pixel shift matters less."""
    before, pool = pooling_site(records)
    own = pool is None
    if own:   # no pooling layer of its own: the lesson's 2x2 max pooling on the first conv's maps
        lab.note(f"the model has no MaxPooling2D / AveragePooling2D layer: the reasons are measured with a 2x2 max "
                 f"pooling on {before.name}'s maps")
    layer = MaxPooling2D(2, name="new_max_pool") if own else pool.layer
    maps = before.output
    pooled = layer(maps) if own else pool.output
    lab.number("the maps shrink", f"{before.name} {shape_text(maps)} = {maps[0].size:,} values per image; "
               f"{layer.name} ({pool_text(layer)}) {shape_text(pooled)} = {pooled[0].size:,}: "
               f"{maps[0].size / pooled[0].size:.3g} times fewer")
    receptive_fields(lab, model, before, pool, layer)
    shift_tolerance(lab, model, before, pool, layer, x)


def pooling_site(records):
    """(the record of the layer feeding the model's first MaxPooling2D / AveragePooling2D, that pool's record), or
    (the first Conv2D's record, None) when the model has no such pooling layer."""
    by_call = {r.call: r for r in records}
    for record in records:
        if type(record.layer) in WINDOW_POOLS and record.inbound and record.inbound[0] in by_call:
            return by_call[record.inbound[0]], record
    return next(r for r in records if type(r.layer) is Conv2D), None


def shape_text(maps) -> str:
    return " x ".join(str(n) for n in maps.shape[1:])


def pool_text(layer) -> str:
    return f"{layer.pool_size[0]}x{layer.pool_size[1]}, strides {layer.strides[0]}"


def receptive_fields(lab, model, before, pool, layer):
    """The receptive field of the centre unit before the pool, after it, and of the Conv2D that reads the pool's
    output (if one does), measured with one-pixel impulses through the open-path copy (``open_paths``)."""
    copy = open_paths(model)
    shape = copy.input_shape[1:]
    with float64():
        zero = copy.trace(np.zeros((1, *shape)))
    after = next((r for r in zero if pool is not None and type(r.layer) is Conv2D and r.inbound[:1] == [pool.call]),
                 None)
    measured = [r for r in (before, pool, after) if r is not None]
    if any(np.abs(r.output).max() > 0 for r in zero if r.call in {m.call for m in measured}):
        lab.note("receptive fields not measured: in the open-path copy some layer answers an all-zero input "
                 "(a fixed offset, such as Rescaling's or batch normalisation's)")
        return
    pixels = probe_pixels(shape[:2])
    # The copy up to the measured layers only (a model whose outputs are their outputs): the impulses need not
    # cross the rest of the network.
    probe = Model(copy.inputs, [copy.get_layer(m.name).output for m in measured])
    reached = {m.call: [] for m in measured}
    with float64():
        for chunk in np.array_split(pixels, max(1, len(pixels) // 256)):
            impulses = np.zeros((len(chunk), *shape))
            impulses[np.arange(len(chunk)), chunk[:, 0], chunk[:, 1]] = 1.0
            outputs = probe.predict(impulses, verbose=0)
            for m, maps in zip(measured, outputs if isinstance(outputs, list) else [outputs]):
                i, j = maps.shape[1] // 2, maps.shape[2] // 2      # the centre unit of channel 0, its right neighbour
                reached[m.call].append(maps[:, i, j : j + 2, 0] > 0)
    fields = {call: field_of(np.concatenate(hits), pixels) for call, hits in reached.items()}
    lab.table("receptive field of the centre unit (channel 0): the input pixels it depends on, measured with one-pixel "
              "impulses through the open-path copy, and the spacing j of neighbouring units",
              ["layer", "height", "width", "spacing j (pixels)", "a full rectangle"],
              [[m.name, *fields[m.call]] for m in measured])
    lab.check("receptive fields measured: units whose field is not a full rectangle",
              sum(not fields[m.call][3] for m in measured), "==", 0)
    if pool is None:
        return
    (r_before, _, j_before, _), (r_pool, _, j_pool, _) = fields[before.call], fields[pool.call]
    k, s = layer.pool_size[0], layer.strides[0]
    lab.check(f"{layer.name}: receptive field height after the pool minus before, against (k - 1)·j = "
              f"({k} - 1)·{j_before}", r_pool - r_before, "==", (k - 1) * j_before)
    lab.check(f"{layer.name}: spacing of neighbouring units after the pool, against s·j = {s}·{j_before}",
              j_pool, "==", s * j_before)
    if after is None:
        lab.note(f"no Conv2D reads {layer.name}'s output directly: the growth is measured at the pool only")
        return
    r_after, k_after = fields[after.call][0], after.layer.kernel_size[0]
    without = r_before + (k_after - 1) * j_before
    lab.number("the receptive field grows", f"{after.name}'s {k_after}x{k_after} windows after {layer.name} see "
               f"{r_after} x {fields[after.call][1]} pixels; reading {before.name}'s maps directly, they would see "
               f"{without} x {without} (r + (k - 1)·j = {r_before} + {k_after - 1}·{j_before})")
    lab.check(f"{after.name}: receptive field height, measured, against r + (k - 1)·j = {r_pool} + "
              f"{k_after - 1}·{j_pool} after the pool", r_after, "==", r_pool + (k_after - 1) * j_pool)
    lab.check(f"{after.name}: receptive field height with the pool minus the {without} without it", r_after - without,
              ">=", 1)


def probe_pixels(hw):
    """(n, 2) rows and columns of the pixels that get an impulse: all of them, or the central PROBE_SIDE x
    PROBE_SIDE for a large input (every field measured here is far smaller)."""
    ranges = [range(max(0, (n - PROBE_SIDE) // 2), min(n, (n + PROBE_SIDE) // 2)) for n in hw]
    return np.array([(r, c) for r in ranges[0] for c in ranges[1]])


def field_of(responses, pixels):
    """(height, width, spacing, full) of a unit's receptive field: ``responses`` (pixels, 2) says which impulses reach
    the unit and its right neighbour; spacing is how far right the neighbour's field starts (in pixels)."""
    rows, cols = pixels[responses[:, 0]].T
    right = pixels[responses[:, 1], 1]
    if not len(rows):
        return 0, 0, 0, False
    height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    spacing = int(right.min() - cols.min()) if len(right) else 0
    return height, width, spacing, bool(len(rows) == height * width)


def open_paths(model):
    """A copy of ``model`` with every path open: activations removed ("linear"), every bias, beta and moving mean 0,
    every other weight 1. All its values are then >= 0, and a unit is > 0 exactly when some path of nonzero weights
    joins it to a pixel that is > 0: one-pixel impulses map out its receptive field (ReLU layers pass positive values,
    max and average pooling keep them)."""
    config = without_activations(model.get_config())
    with float64():
        copy = type_of(config).from_config(config)
    for p in copy.parameters:
        short = p.name.rsplit("/", 1)[-1]
        p.value[...] = 0.0 if short in ("bias", "beta", "moving_mean") else 1.0
    return copy


def without_activations(config):
    """``config`` with every layer's ``activation`` (nested models' too) set to "linear"."""
    layers = []
    for spec in config["layers"]:
        settings = dict(spec["config"])
        if "layers" in settings:
            settings = without_activations(settings)
        if "activation" in settings:
            settings["activation"] = "linear"
        layers.append({**spec, "config": settings})
    return {**config, "layers": layers}


def shift_tolerance(lab, model, before, pool, layer, x):
    """How much the maps before and after the pool change when the digits move by one pixel (right, then down)."""
    changes = {"before": [], "after": []}
    with float64():
        for axis in (2, 1):
            traced = {r.call: r for r in model.trace(shifted(x, axis))}
            moved_maps = traced[before.call].output
            moved_pooled = layer(moved_maps) if pool is None else traced[pool.call].output
            pooled = layer(before.output) if pool is None else pool.output
            changes["before"].append(relative_change(moved_maps, before.output))
            changes["after"].append(relative_change(moved_pooled, pooled))
    conv_change, pool_change = (float(np.mean(changes[k])) for k in ("before", "after"))
    lab.number("small shifts matter less", f"digits moved by 1 pixel (right, then down): {before.name}'s maps change by "
               f"{conv_change:.1%} (|maps(moved) - maps| / |maps|, mean of the two), {layer.name}'s pooled maps by "
               f"{pool_change:.1%}")
    lab.check(f"1-pixel shift: change of {layer.name}'s pooled maps over the change of {before.name}'s maps",
              pool_change / conv_change, "<=", SHIFT_LIMIT)
    # Test image 0, moved right: its own numbers in the title, all digits' beside them.
    moved_maps = model.trace(shifted(x[:1], 2))
    moved_maps = next(r for r in moved_maps if r.call == before.call).output
    f = int(np.argmax(before.output[0].sum(axis=(0, 1))))
    pooled, moved_pooled = layer(before.output[:1]), layer(moved_maps)
    own = relative_change(moved_maps, before.output[:1]), relative_change(moved_pooled, pooled)
    lab.picture("pooling_shift.png", plots.panels_figure, [
        ("test image 0", x[0, :, :, 0]),
        ("moved right by 1 pixel", shifted(x[:1], 2)[0, :, :, 0]),
        (f"{before.name}, map {f}", before.output[0, :, :, f]),
        ("the same map, digit moved", moved_maps[0, :, :, f]),
        ("difference", moved_maps[0, :, :, f] - before.output[0, :, :, f]),
        (f"{layer.name} of the map", pooled[0, :, :, f]),
        ("pooled, digit moved", moved_pooled[0, :, :, f]),
        ("difference", moved_pooled[0, :, :, f] - pooled[0, :, :, f]),
    ], f"a 1-pixel shift: the conv maps move with the digit, the pooled maps ({pool_text(layer)}) change less\n"
       f"{own[0]:.0%} against {own[1]:.0%} for this digit (all {before.output.shape[-1]} maps), "
       f"{conv_change:.0%} against {pool_change:.0%} for all {len(x)} digits", columns=4,
        groups=[(2, 3, 4), (5, 6, 7)], note="change: |maps(moved) - maps| / |maps|; one colour scale for the three "
                                            "conv panels, one for the three pooled panels")


def shifted(x, axis):
    """``x`` (N, H, W, C) moved by one pixel down (axis 1) or right (axis 2); the vacated edge repeats its
    neighbour (on MNIST, background zeros)."""
    pad = [(0, 0)] * 4
    pad[axis] = (1, 0)
    return np.take(np.pad(x, pad, mode="edge"), np.arange(x.shape[axis]), axis=axis)


def relative_change(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


# -- routing ----------------------------------------------------------------------------------------------


def overlapping(lab, maps, rng):
    """Overlapping 3x3 windows of stride 2: each cell receives the sum over the windows holding it, checked against
    the plain loops of arraymath/reference.py on a slice of the maps (two images, eight channels)."""
    part = maps[:2, :, :, :8]
    max_pool = MaxPooling2D(3, strides=2, name="new_overlapping_max_pool")
    avg_pool = AveragePooling2D(3, strides=2, name="new_overlapping_avg_pool")
    with float64():
        upstream = rng.standard_normal(max_pool(part).shape)
        avg_pool(part)
        max_dx, avg_dx = max_pool.backward(upstream), avg_pool.backward(upstream)
        # How many windows hold each cell: average pooling's gradient of ones, times the 9 cells of a window.
        holders = np.rint(avg_pool.backward(np.ones_like(upstream))[0, :, :, 0] * 9).astype(int)
    counts = {int(k): int((holders == k).sum()) for k in np.unique(holders)}
    lab.number("overlapping 3x3 windows, stride 2", f"on {part.shape[1]}x{part.shape[2]} maps: "
               + ", ".join(f"{n} cells in {k} window{'s' if k != 1 else ''}" for k, n in counts.items())
               + " (a cell's average-pooling gradient is the sum of 1/9 of each of its windows' gradients)")
    lab.check("overlapping average pooling: max |dL/dx - loops (Σ over the windows holding the cell of upstream / 9)|",
              max_abs(avg_dx, avg_pool2d_backward_loops(upstream, part, (3, 3), (2, 2))), "<=", 1e-15)
    lab.check("overlapping max pooling: max |dL/dx - loops (Σ over the windows whose first maximum the cell is)|",
              max_abs(max_dx, max_pool2d_backward_loops(upstream, part, (3, 3), (2, 2))), "<=", 1e-15)
    lab.check("overlapping windows: cells in more than one window", sum(n for k, n in counts.items() if k > 1), ">=", 1)


def keras_ties(lab):
    """convscope's tie rule against Keras's own gradients (tests/fixtures/keras_pool_ties)."""
    if not (KERAS_TIES / "pool_ties.npz").is_file():
        lab.note(f"Keras's tie gradients not found ({KERAS_TIES}, in the source checkout): the comparison with Keras "
                 "is left out")
        return
    arrays = np.load(KERAS_TIES / "pool_ties.npz")
    meta = json.loads((KERAS_TIES / "pool_ties.json").read_text())
    worst, described = 0.0, []
    for case, kwargs in meta["cases"].items():
        layer = MaxPooling2D(**kwargs, name=f"keras_{case}")
        x, upstream, dx = (arrays[f"{case}/{key}"] for key in ("x", "upstream", "dx"))
        layer(x)
        worst = max(worst, max_abs(layer.backward(upstream), dx))
        described.append(f"{case} ({pool_text(layer)}{', ' + layer.padding if layer.padding != 'valid' else ''})")
    # Keras's own numbers, read directly: in non-overlapping windows, which tied cell got the gradient.
    x, upstream, dx = (arrays[f"pool2/{key}"] for key in ("x", "upstream", "dx"))
    shape = (x.shape[0], x.shape[1] // 2, x.shape[2] // 2, x.shape[3])
    cells, grads = to_windows(x, shape), to_windows(dx, shape)
    tied = (cells == cells.max(axis=-1, keepdims=True)).sum(axis=-1) > 1
    first = np.argmax(cells == cells.max(axis=-1, keepdims=True), axis=-1)
    on_first = np.take_along_axis(grads, first[..., None], axis=-1)[..., 0] == upstream
    lab.number("Keras's tie gradients", f"Keras {meta['keras']} ({meta['backend']} backend), cases "
               f"{', '.join(described)}; in pool2, {int(tied.sum())} of {tied.size} windows tie")
    lab.check("Keras, pool2 fixture: tied windows whose whole gradient is not on the first maximal cell (row-major)",
              int((tied & ~(on_first & ((grads != 0).sum(axis=-1) == 1))).sum()), "==", 0)
    lab.check("Keras, pool2 fixture: tied windows (the comparison is about ties)", int(tied.sum()), ">=", 1)
    lab.check("convscope's MaxPooling2D gradient vs Keras's, every fixture case: max |difference|", worst, "==", 0)


def to_windows(a, pooled_shape):
    """(N, H, W, C) -> (N, OH, OW, C, 4): the cells of every non-overlapping 2x2 window (rows / columns
    beyond the last whole window, which "valid" pooling never reads, are dropped)."""
    n, oh, ow, c = pooled_shape
    a = a[:, : 2 * oh, : 2 * ow].reshape(n, oh, 2, ow, 2, c)
    return a.transpose(0, 1, 3, 5, 2, 4).reshape(n, oh, ow, c, 4)
