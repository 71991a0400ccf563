"""``convscope show filters | maps | gradients | history | evolution | augment``: pictures as PNG (and GIF) files."""

from __future__ import annotations

import json
import os
import re

DEFAULT_OUT = "pictures"


def register(subparsers) -> dict:
    """Add ``show`` and its six pictures to the ``convscope`` command line; returns ``{"show": handler}``."""
    show = subparsers.add_parser("show", allow_abbrev=False, help="draw a model's filters, feature maps, gradients "
                                 "or a run's training curves as PNG files",
                                 description="Draw pictures of a model or a run folder (PNG; evolution also as GIF). "
                                 "MODEL is a .convscope file or a run folder.")
    what = show.add_subparsers(dest="picture", metavar="PICTURE", parser_class=type(show))
    what.required = True

    filters = what.add_parser("filters", allow_abbrev=False, help="every filter of each conv layer")
    filters.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")
    filters.add_argument("--layer", help="only this conv layer (default: every conv layer, nested models' too)")

    maps = what.add_parser("maps", allow_abbrev=False,
                           help="feature maps of every conv and pooling layer for one input, before and after activation")
    maps.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")
    maps.add_argument("image", nargs="?", help="a picture of a digit (PNG, JPEG, ...); or use --index")

    gradients = what.add_parser("gradients", allow_abbrev=False,
                                help="for one input and its label: the input gradient and every kernel gradient")
    gradients.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")
    gradients.add_argument("image", nargs="?", help="a picture of a digit (needs --label); or use --index")
    gradients.add_argument("--label", type=int, choices=range(10), metavar="DIGIT", help="the label of IMAGE")

    for parser in (maps, gradients):
        parser.add_argument("--layer", action="append", metavar="NAME",
                            help="only this layer (a name, or OUTER/INNER inside a nested model); repeatable "
                                 "(default: every layer)")
        parser.add_argument("--input-range", metavar="LOW,HIGH",
                            help="the values black and white pixels take in the model's input (default: [0, 255] "
                                 "when its first layer is Rescaling / Normalization, [-1, 1] for keras.applications "
                                 "MobileNet, else [0, 1]); the digit is resized and its gray copied into every "
                                 "channel to fit the model's input shape")
        parser.add_argument("--index", type=int, help="test image N of --dataset instead of IMAGE")
        parser.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist", "mnist-sample"),
                            help="test set for --index (default: mnist if found on disk, else the offline sample)")

    history = what.add_parser("history", allow_abbrev=False, help="loss and accuracy curves of a run")
    history.add_argument("run", help="a run folder (with history.json)")

    evolution = what.add_parser("evolution", allow_abbrev=False,
                                help="a conv layer's filters from initialization through every epoch (PNG and GIF)")
    evolution.add_argument("run", help="a run folder (with filters/epoch_NNN.npz)")
    evolution.add_argument("--layer", help="conv layer (default: the first)")

    augment = what.add_parser("augment", allow_abbrev=False,
                              help="sample digits through seeded draws of each augmentation layer")
    augment.add_argument("model", nargs="?", help="a model file or run folder: draw its augmentation front "
                         "(default: each Keras augmentation layer)")
    augment.add_argument("--digits", type=int, default=3, help="how many sample digits (default: 3)")
    augment.add_argument("--draws", type=int, default=4, help="draws per digit and layer (default: 4)")
    augment.add_argument("--seed", type=int, default=0, help="seed of the draws (default: 0)")

    for parser in (filters, maps, gradients, history, evolution, augment):
        parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the pictures (default: {DEFAULT_OUT})")
    return {"show": run}


def run(args) -> int:
    return {"filters": show_filters, "maps": show_maps, "gradients": show_gradients, "history": show_history,
            "evolution": show_evolution, "augment": show_augment}[args.picture](args)


def show_filters(args) -> int:
    from .figures import filters_figure
    from .sources import filter_bank, find_layer, is_conv, open_model, walk_layers

    model = open_model(args.model)
    layers = [(args.layer, find_layer(model, args.layer))] if args.layer else walk_layers(model)
    convs = [(path, layer) for path, layer in layers if is_conv(layer)]
    if not convs:
        raise ValueError(f"layer {args.layer!r} is a {type(layers[0][1]).__name__}, not a conv layer" if args.layer
                         else "the model has no conv layer")
    for path, layer in convs:
        kernel, bias, title = filter_bank(layer)
        _save(filters_figure(kernel, title=title, bias=bias), args.out, f"filters_{path.replace('/', '_')}.png")
    return 0


def show_maps(args) -> int:
    from .model_figures import maps_figures

    model, adapter, layers = _model_and_input(args)
    image, name, _ = _input(args, need_label=False)
    for part, fig in maps_figures(model, image, title_prefix=f"{name}: ", adapter=adapter, layers=layers):
        _save(fig, args.out, f"maps_{_slug(name)}_{part}.png")
    return 0


def show_gradients(args) -> int:
    from .model_figures import gradient_figures

    model, adapter, layers = _model_and_input(args)
    image, name, label = _input(args, need_label=True)
    for part, fig in gradient_figures(model, image, label, title_prefix=f"{name}: ", adapter=adapter, layers=layers):
        _save(fig, args.out, f"gradients_{_slug(name)}_{part}.png")
    return 0


def _model_and_input(args):
    """(model, its ``InputAdapter``, the layers asked for or None); says how digits are fed when not as MNIST."""
    from .sources import find_layer, input_adapter, open_model, parse_range

    model = open_model(args.model)
    adapter = input_adapter(model, parse_range(args.input_range))
    for name in args.layer or ():
        find_layer(model, name)            # an unknown name fails now, with the list of layers
    if not adapter.is_mnist:
        print(adapter.describe())
    return model, adapter, args.layer


def show_history(args) -> int:
    from .figures import curves_figure

    path = os.path.join(args.run, "history.json")
    if not os.path.isfile(path):
        raise ValueError(f"{args.run!r} is not a run folder with a history (no history.json)")
    with open(path, encoding="utf-8") as f:
        try:
            history = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    title = f"Training curves: {os.path.basename(os.path.normpath(args.run))}"
    _save(curves_figure(history, title=title), args.out, "history.png")
    return 0


def show_evolution(args) -> int:
    from .evolution import evolution_figure, load_snapshots, save_evolution_gif

    layer, snapshots = load_snapshots(args.run, args.layer)
    _save(evolution_figure(snapshots, layer), args.out, f"evolution_{layer}.png")
    path = os.path.join(args.out, f"evolution_{layer}.gif")
    print(f"wrote {save_evolution_gif(snapshots, layer, path)} ({len(snapshots)} frames)")
    return 0


def show_augment(args) -> int:
    from .augment_figures import augment_figure, augmentation_front, default_layers, sample_digits
    from .sources import open_model

    images = sample_digits(args.digits)
    if args.model:
        model = open_model(args.model)
        layers, name = augmentation_front(model), f"augment_{_slug(model.name)}.png"
    else:
        layers, name = default_layers(), "augment.png"
    _save(augment_figure(images, layers, draws=args.draws, seed=args.seed), args.out, name)
    return 0


def _input(args, need_label: bool):
    """``(image, name for titles and files, label or None)`` from IMAGE or --index."""
    from .sources import load_test_set, pick

    if (args.image is None) == (args.index is None):
        raise ValueError("give either IMAGE or --index N (one test image), not both and not neither")
    if args.index is not None:
        if getattr(args, "label", None) is not None:
            raise ValueError("--label is only for IMAGE: a test image's label comes with it")
        dataset, x, y = load_test_set(args.dataset)
        image, label = pick(x, y, args.index)
        return image, f"{dataset} test image {args.index}", label
    from ..images import load_digit

    if need_label and args.label is None:
        raise ValueError("gradients of a picture need its label: add --label DIGIT")
    return load_digit(args.image), os.path.basename(args.image), getattr(args, "label", None)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def _save(fig, folder, name) -> None:
    from .figures import save_figure

    os.makedirs(folder, exist_ok=True)
    print(f"wrote {save_figure(fig, os.path.join(folder, name))}")
