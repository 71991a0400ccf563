"""``convscope show filters | maps | gradients | history | evolution | augment``: pictures as PNG (and GIF) files."""

from __future__ import annotations

import os
import time

from .outputs import PictureFolder, default_folder


def register(subparsers) -> dict:
    """Add ``show`` and its six pictures to the ``convscope`` command line; returns ``{"show": handler}``."""
    from .figures import SCALES   # figures imports matplotlib only when it draws
    show = subparsers.add_parser("show", allow_abbrev=False, help="draw a model's filters, feature maps, gradients "
                                 "or a run's training curves as PNG files",
                                 description="Draw pictures of a model or a run folder (PNG; evolution also as GIF). "
                                 "MODEL is a .convscope file or a run folder.")
    what = show.add_subparsers(dest="picture", metavar="PICTURE", parser_class=type(show))
    what.required = True

    filters = what.add_parser("filters", allow_abbrev=False, help="the filters of each conv layer (of a large bank, a "
                              "chosen subset: --filters, --channels)")
    filters.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")
    filters.add_argument("--layer", help="only this conv layer (default: every conv layer, nested models' too)")

    maps = what.add_parser("maps", allow_abbrev=False,
                           help="feature maps of every conv and pooling layer for one input, before and after activation")
    maps.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")
    maps.add_argument("image", nargs="?", help="a picture of a digit (PNG, JPEG, ...); or use --index "
                      "(default: test image 0)")

    gradients = what.add_parser("gradients", allow_abbrev=False,
                                help="for one input and its label: the input gradient and every kernel gradient")
    gradients.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")
    gradients.add_argument("image", nargs="?", help="a picture of a digit (needs --label); or use --index "
                           "(default: test image 0)")
    gradients.add_argument("--label", type=int, choices=range(10), metavar="DIGIT", help="the label of IMAGE")

    for parser in (filters, gradients):
        parser.add_argument("--filters", metavar="LIST", help="which filters to draw: indices or ranges, e.g. 0-7 or "
                            "0,3,5 (default: all of a first layer, up to 64; filters 0-15 of a deeper one)")
        parser.add_argument("--channels", metavar="LIST", help="which input channels of a deeper layer to draw "
                            "(default: 0-7); a first layer's filters are drawn whole")
        parser.add_argument("--scale", choices=SCALES, default="auto",
                            help="colour scale: one shared by all filters, one per filter, or auto (per filter when "
                                 "a shared one would leave many filters pale; the default); the picture says which")

    for parser in (maps, gradients):
        parser.add_argument("--layer", action="append", metavar="NAME",
                            help="only this layer (a name, or OUTER/INNER inside a nested model); repeatable "
                                 "(default: every layer)")
        parser.add_argument("--input-range", metavar="LOW,HIGH",
                            help="the values black and white pixels take in the model's input (default: [0, 255] "
                                 "when its first layer is Rescaling / Normalization, [-1, 1] for keras.applications "
                                 "MobileNet, else [0, 1]); the digit is resized and its gray copied into every "
                                 "channel to fit the model's input shape")
        parser.add_argument("--index", type=int, help="test image N of --dataset instead of IMAGE (default: 0)")
        parser.add_argument("--least-confident", action="store_true",
                            help="the test image of --dataset whose largest probability is the lowest")
        parser.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist", "mnist-sample"),
                            help="test set for --index and --least-confident (default: mnist if found on disk, else "
                                 "the offline sample)")

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

    by_model = ("RUN/pictures when MODEL is a run folder or its model file, else pictures/NAME for a model file "
                "NAME.convscope, NAME.keras, ...")
    for parser, default in ((filters, by_model), (maps, by_model), (gradients, by_model),
                            (augment, by_model + "; pictures/ without MODEL"), (history, "RUN/pictures"),
                            (evolution, "RUN/pictures")):
        parser.add_argument("--out", metavar="DIR", help=f"folder for the pictures (default: {default})")
    return {"show": run}


def run(args) -> int:
    source = getattr(args, "model", None) or getattr(args, "run", None)
    pictures = PictureFolder(args.out or default_folder(source))
    return {"filters": show_filters, "maps": show_maps, "gradients": show_gradients, "history": show_history,
            "evolution": show_evolution, "augment": show_augment}[args.picture](args, pictures)


def show_filters(args, pictures) -> int:
    from .figures import filters_figure
    from .sources import filter_bank, find_layer, is_conv, open_model, walk_layers

    model = open_model(args.model)
    layers = [(args.layer, find_layer(model, args.layer))] if args.layer else walk_layers(model)
    convs = [(path, layer) for path, layer in layers if is_conv(layer)]
    if not convs:
        raise ValueError(f"layer {args.layer!r} is a {type(layers[0][1]).__name__}, not a conv layer" if args.layer
                         else "the model has no conv layer")
    select = _selector(args)
    drawn = 0
    for path, layer in convs:
        kernel, bias, title = filter_bank(layer)
        options = select(path, kernel)
        if options is not None:
            _save(filters_figure(kernel, title=title, bias=bias, **options), pictures, "filters", path)
            drawn += 1
    if not drawn:
        raise ValueError("no conv layer has the filters and input channels that --filters and --channels ask for")
    return 0


def _selector(args):
    """``select(path, kernel)`` -> the ``filters_figure`` options for one layer from --filters, --channels and
    --scale; indices a layer lacks are dropped and said (None, and said, when none is left)."""
    from .figures import describe_indices
    from .sources import parse_indices

    filters, channels = parse_indices(args.filters, "--filters"), parse_indices(args.channels, "--channels")

    def kept(path, asked, count, option, noun):
        present = [i for i in asked if i < count]
        if len(present) < len(asked):
            shown = f"showing {describe_indices(present)}" if present else "left out"
            print(f"{path}: has {count} {noun}, {option} asks for {describe_indices(asked)}: {shown}")
        return present

    def select(path, kernel):
        _, _, inputs, count = kernel.shape
        options = {"scale": args.scale}
        if filters is not None:
            options["filters"] = kept(path, filters, count, "--filters", "filters")
            if not options["filters"]:
                return None
        if channels is not None and inputs in (1, 3):
            print(f"{path}: its filters have {inputs} input channel{'s' if inputs > 1 else ''}, drawn whole "
                  "(--channels picks a deeper layer's columns)")
        elif channels is not None:
            options["channels"] = kept(path, channels, inputs, "--channels", "input channels")
            if not options["channels"]:
                return None
        return options

    return select


def show_maps(args, pictures) -> int:
    from .model_figures import maps_figures

    model, adapter, layers = _model_and_input(args)
    image, name, tag, _ = _input(args, model, adapter, need_label=False)
    for part, fig in maps_figures(model, image, title_prefix=f"{name}: ", adapter=adapter, layers=layers):
        _save(fig, pictures, "maps", tag, part)
    return 0


def show_gradients(args, pictures) -> int:
    from .model_figures import gradient_figures

    model, adapter, layers = _model_and_input(args)
    image, name, tag, label = _input(args, model, adapter, need_label=True)
    for part, fig in gradient_figures(model, image, label, title_prefix=f"{name}: ", adapter=adapter, layers=layers,
                                      select=_selector(args)):
        _save(fig, pictures, "gradients", tag, part)
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


def show_history(args, pictures) -> int:
    from .figures import curves_figure

    from ..runs import read_history

    history = read_history(args.run)
    if history is None:
        raise ValueError(f"{args.run!r} is not a run folder with a history (no history.json)")
    title = f"Training curves: {os.path.basename(os.path.normpath(args.run))}"
    _save(curves_figure(history, title=title, training_only=_training_only(args.run)), pictures, "history")
    return 0


def _training_only(run):
    """The run's model's training-only layers (``sources.training_only_layers``); None when it has no model file."""
    from .sources import model_path, open_model, training_only_layers

    try:
        model_path(run)
    except ValueError:
        return None
    return training_only_layers(open_model(run))


def show_evolution(args, pictures) -> int:
    from ..callbacks.progbar import progress_line
    from .evolution import evolution_figure, load_snapshots, save_evolution_gif

    layer, snapshots = load_snapshots(args.run, args.layer)
    print(f"drawing {len(snapshots)} snapshots of {layer} (epochs {snapshots[0][0]}-{snapshots[-1][0]}): one "
          "picture, then a GIF frame each", flush=True)
    _save(evolution_figure(snapshots, layer), pictures, "evolution", layer)
    start = time.perf_counter()

    def frame_drawn(done, total):
        print(f"  GIF frames: {progress_line(done, total, time.perf_counter() - start, None)}", flush=True)

    path = save_evolution_gif(snapshots, layer, pictures.path("evolution", layer, suffix=".gif"), progress=frame_drawn)
    print(f"wrote {path} ({len(snapshots)} frames)")
    return 0


def show_augment(args, pictures) -> int:
    from .augment_figures import augment_figure, augmentation_front, default_layers, sample_digits
    from .sources import open_model

    images = sample_digits(args.digits)
    if args.model:
        model = open_model(args.model)
        layers, parts = augmentation_front(model), ("augment", model.name)
    else:
        layers, parts = default_layers(), ("augment",)
    _save(augment_figure(images, layers, draws=args.draws, seed=args.seed), pictures, *parts)
    return 0


def _input(args, model, adapter, need_label: bool):
    """``(image, name for titles, tag for file names, label or None)`` from IMAGE, --index or --least-confident
    (default: test image 0); the tag of a test image is ``mnist-test-image-0``, of a picture its file name."""
    from .sources import least_confident, load_test_set, pick

    if sum((args.image is not None, args.index is not None, args.least_confident)) > 1:
        raise ValueError("give one input: IMAGE, --index N or --least-confident (default: test image 0)")
    if args.image is None:
        if getattr(args, "label", None) is not None:
            raise ValueError("--label is only for IMAGE: a test image's label comes with it")
        dataset, x, y = load_test_set(args.dataset)
        index = 0 if args.index is None else args.index
        if args.least_confident:
            index, top = least_confident(model, adapter, x)
            print(f"Least confident: {dataset} test image {index} (largest probability {top:.3f}, label {int(y[index])})")
        image, label = pick(x, y, index)
        return image, f"{dataset} test image {index}", f"{dataset}-test-image-{index}", label
    from ..images import load_digit

    if need_label and args.label is None:
        raise ValueError("gradients of a picture need its label: add --label DIGIT")
    name = os.path.basename(args.image)
    return load_digit(args.image), name, name, getattr(args, "label", None)


def _save(fig, pictures, *parts) -> None:
    """Write ``fig`` as ``pictures.path(*parts)`` and say where: every picture ``show`` writes is said so."""
    from .figures import save_figure

    print(f"wrote {save_figure(fig, pictures.path(*parts))}", flush=True)
