"""The ``convscope`` command: parse, call the library, print. Errors are one line on stderr, exit status 2
(3: ``train`` stopped because the loss diverged)."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import shlex
import sys
import time

from . import backend, blas_env
from .runs import DATASETS
from .arraymath import jit
from .callbacks import TerminateOnNaN
from .errors import ConvscopeFileError
from .zoo import MODELS

DIVERGED = 3  # exit status of a training run stopped by a NaN or infinite loss


class UsageError(Exception):
    """A bad command line: reported in one line with exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def number_type(convert, accept, expected: str):
    """An argparse ``type``: ``convert(text)`` must succeed and pass ``accept``, else "expected <expected>"."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


positive_int = number_type(int, lambda v: v >= 1, "a positive integer")
non_negative_int = number_type(int, lambda v: v >= 0, "a non-negative integer")
positive_float = number_type(float, lambda v: 0 < v < float("inf"), "a positive number")


def build_parser() -> Parser:
    parser = Parser(prog="convscope", description="Train, inspect and run convolutional networks that you can see inside.",
                    allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    train = sub.add_parser("train", allow_abbrev=False, help="train a model from scratch (or resume a run) and write a run folder",
                           description="Train the Keras MNIST convnet (or LeNet-5) and write a run folder: final model, "
                           "per-epoch checkpoints, history, filter snapshots. With no arguments: full MNIST if it can "
                           "be found or downloaded, else the offline sample.",
                           epilog="Exit status: 0 trained; 2 bad arguments, settings or files; 3 training diverged "
                           "(the loss became NaN or infinite: training stops at that batch, naming the epoch and "
                           "batch, keeps the checkpoint of the last good epoch and writes no final model); "
                           "130 interrupted (Ctrl-C; the checkpoint is kept, continue with --resume).")
    train.add_argument("--dataset", choices=DATASETS, help="data set (default: mnist, falling back to mnist-sample)")
    train.add_argument("--model", choices=sorted(MODELS), default="keras-convnet", help="architecture (default: keras-convnet)")
    train.add_argument("--epochs", type=positive_int, default=15, help="epochs to train (default: 15, the Keras recipe)")
    train.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default: 128)")
    train.add_argument("--optimizer", default="adam", help="adam, sgd, rmsprop, adagrad, adamw (default: adam)")
    train.add_argument("--learning-rate", type=positive_float, help="learning rate (default: the optimizer's Keras default)")
    train.add_argument("--kernel-initializer", default="glorot_uniform", help="e.g. glorot_uniform, he_normal, zeros")
    train.add_argument("--activation", help="hidden-layer activation (default: the recipe's: relu / tanh)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    train.add_argument("--limit", type=positive_int, help="use only the first N training images")
    train.add_argument("--out", help="run folder (default: runs/<dataset>-<model>-<time>)")
    train.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR from its last checkpoint")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None, help="0 silent, 1 progress bar, 2 one line per epoch")

    evaluate = sub.add_parser("evaluate", allow_abbrev=False, help="loss and accuracy of a model on a test set")
    evaluate.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")
    evaluate.add_argument("--dataset", choices=DATASETS, default="mnist", help="test set (default: mnist)")
    evaluate.add_argument("--batch-size", type=positive_int, default=256)

    summary = sub.add_parser("summary", allow_abbrev=False, help="print a model's layers, output shapes and parameter counts")
    summary.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")

    predict = sub.add_parser("predict", allow_abbrev=False, help="classify pictures of digits (PNG, JPEG, ...)")
    predict.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="picture files of one digit each, any size")
    export = sub.add_parser(
        "export", allow_abbrev=False, help="write a model as an ONNX graph and / or a Keras 3 .keras file",
        description="Convert a model file (.convscope, .keras or legacy Keras .h5) or a run folder's model to ONNX "
        "(run by onnxruntime and other engines; NHWC float32 input) and / or to a Keras 3 .keras file. Needs the "
        "interop extra: pip install 'convscope[interop]'.",
    )
    export.add_argument("model", help="a model file (.convscope, .keras, .h5) or run folder")
    export.add_argument("--onnx", metavar="OUT", help="write an ONNX graph to OUT (e.g. model.onnx)")
    export.add_argument("--keras", metavar="OUT", help="write a Keras 3 model to OUT (e.g. model.keras)")
    for module in TOOL_COMMANDS:
        COMMANDS.update(importlib.import_module(module).register(sub))
    return parser


def main(argv=None) -> int:
    """Run the command line ``argv`` (None: this process's own, which ``train`` re-executes once with OpenBLAS's
    short wait, see blas_env) and return its exit status."""
    try:
        args = build_parser().parse_args(argv)
        if argv is None:
            blas_env.rerun_with_short_wait(args.command)
        for note in blas_env.slow_blas_notes(os.environ, sys.argv[1:] if argv is None else argv):
            print(note, file=sys.stderr)
        return COMMANDS[args.command](args)
    except UsageError as e:
        print(one_line(str(e)), file=sys.stderr)
    except (ConvscopeFileError, ValueError, TypeError, OSError, ImportError) as e:
        print(one_line(f"convscope: error: {e}"), file=sys.stderr)
    except KeyboardInterrupt:
        # Ctrl-C outside training (loading data, saving, evaluating): no traceback.
        print("convscope: interrupted", file=sys.stderr)
        return 130
    return 2


def one_line(message: str) -> str:
    """Errors are reported in one line: a multi-line message (e.g. a failed download's) is joined with "; "."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def load_dataset(name: str, announce_fallback: bool = False):
    """(train, test) splits of ``name``; for the default MNIST, fall back to the offline sample with one line."""
    from .datasets import fashion_mnist, mnist, mnist_sample
    from .errors import DownloadError

    loaders = {"mnist": mnist, "fashion-mnist": fashion_mnist, "mnist-sample": mnist_sample}
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(loaders)}")
    if name == "mnist-sample":
        return "mnist-sample", mnist_sample.load_data()
    module = loaders[name]
    try:
        return name, module.load_data()
    except DownloadError:
        if not announce_fallback:
            raise
    print("Full MNIST not found locally and could not be downloaded (set CONVSCOPE_DATA to a folder holding "
          "mnist/); training on the offline sample instead.", flush=True)
    return "mnist-sample", mnist_sample.load_data()


def cmd_train(args) -> int:
    from . import runs

    if args.resume:
        changed = [f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                   if k not in ("command", "resume", "verbose") and v != TRAIN_DEFAULTS[k]]
        if changed:
            raise ValueError(f"--resume continues a run with its saved settings; do not combine it with {', '.join(changed)}")
        if os.path.exists(os.path.join(args.resume, runs.FINAL_MODEL)):
            raise ValueError(f"the run in {args.resume!r} already finished ({runs.FINAL_MODEL} exists)")
        cfg, model, epochs_done, history = runs.resume(args.resume)
        run_dir = args.resume
        print(f"Resuming {run_dir} after epoch {epochs_done} of {cfg.epochs}", flush=True)
        _, ((x, y), (x_test, y_test)) = load_dataset(cfg.dataset)
    else:
        dataset, ((x, y), (x_test, y_test)) = load_dataset(args.dataset or "mnist", announce_fallback=args.dataset is None)
        cfg = runs.RunConfig(dataset=dataset, model=args.model, epochs=args.epochs, batch_size=args.batch_size,
                             optimizer=args.optimizer, learning_rate=args.learning_rate,
                             kernel_initializer=args.kernel_initializer, activation=args.activation,
                             seed=args.seed, limit=args.limit)
        run_dir = args.out or os.path.join("runs", f"{dataset}-{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}")
        model = runs.start(cfg, run_dir)
        epochs_done, history = 0, {}
    if cfg.limit:
        x, y = x[: cfg.limit], y[: cfg.limit]
    x, y = runs.prepare(x, y)
    x_test, y_test = runs.prepare(x_test, y_test)
    print(f"Training on {len(x)} images of {cfg.dataset} ({cfg.validation_split:.0%} held out for validation); "
          f"run folder: {run_dir}", flush=True)
    model.summary()
    recorder = runs.RunRecorder(run_dir, history)
    nan_guard = TerminateOnNaN()
    start = time.perf_counter()
    try:
        # Overflow warnings are noise once the loss diverges: the guard reports it in one line.
        with backend.xp.errstate(over="ignore", invalid="ignore", divide="ignore"):
            model.fit(x, y, batch_size=cfg.batch_size, epochs=cfg.epochs, initial_epoch=epochs_done,
                      validation_split=cfg.validation_split, callbacks=[nan_guard, recorder],
                      verbose="auto" if args.verbose is None else args.verbose)
    except KeyboardInterrupt:
        done = len(next(iter(recorder.history.values()), []))
        print(f"\nInterrupted. The checkpoint after epoch {done} is saved in "
              f"{os.path.join(run_dir, runs.CHECKPOINT)}; continue with: convscope train --resume {run_dir}",
              file=sys.stderr)
        return 130
    if nan_guard.stopped_at or recorder.refused:
        if nan_guard.stopped_at:
            epoch, batch, loss = nan_guard.stopped_at
            what = f"the loss became {loss} at epoch {epoch}, batch {batch}"
        else:
            what = recorder.refused
        print(f"convscope: error: training diverged: {what}; stopped. No final model was written; the checkpoint "
              f"after epoch {recorder.epochs_recorded} (the last good one) is kept in "
              f"{os.path.join(run_dir, runs.CHECKPOINT)}. Try a smaller --learning-rate.", file=sys.stderr)
        return DIVERGED
    # A first run compiles the kernels during fit's first batches: set-up, so it is counted apart.
    compiling = jit.compile_seconds()
    seconds = time.perf_counter() - start - compiling
    model.save(os.path.join(run_dir, runs.FINAL_MODEL))
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    compiled = f" (and {compiling:.1f} s compiling kernels, first run only)" if compiling else ""
    print(f"Training time: {seconds:.1f} s{compiled}; model saved to {os.path.join(run_dir, runs.FINAL_MODEL)}")
    print(f"Test accuracy: {accuracy:.4f} (loss {loss:.4f}) on {len(x_test)} {cfg.dataset} test images")
    warning = chance_warning(accuracy, model.output_shape[-1], len(x_test))
    if warning:
        print(warning, file=sys.stderr)
    print(next_steps(run_dir))
    return 0


def chance_warning(accuracy: float, classes: int, n: int) -> str | None:
    """A warning line when a test accuracy measured on ``n`` images is no better than guessing among ``classes``.

    A guesser's accuracy on ``n`` images has mean ``p = 1 / classes`` and standard error ``sqrt(p (1 - p) / n)``;
    an accuracy within 3 of those of ``p`` (or below it) is at chance level. ``None`` above that.
    """
    chance = 1 / classes
    if accuracy > chance + 3 * math.sqrt(chance * (1 - chance) / n):
        return None
    # A learning rate far too large often ends here rather than in NaN: every ReLU dies, the output no longer
    # depends on the image, and the loss stays finite.
    return (f"convscope: warning: test accuracy {accuracy:.4f} is at chance level ({chance:.4f} for {classes} classes, "
            f"within 3 standard errors on {n} images): the model predicts no better than guessing. "
            "If the loss grew or stalled, try a smaller --learning-rate.")


#: What to look at after training, as README.md shows them: ``RUN`` is replaced by the run folder.
NEXT_STEPS = ("convscope show filters RUN", "convscope explore RUN", "convscope lesson run ALL --model RUN")


def next_steps(run_dir: str) -> str:
    """The commands that look inside ``run_dir``, one per line, the folder quoted for the shell where it needs it."""
    folder = shlex.quote(run_dir)
    return "Look inside the run:\n" + "\n".join(f"  {step.replace('RUN', folder)}" for step in NEXT_STEPS)


def _labels_for(model, y):
    """Integer labels, or one-hot rows when the model was compiled with a categorical loss."""
    from .utils import to_categorical

    if model.loss is None:
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if model.loss.name == "categorical_crossentropy":
        return to_categorical(y, model.output_shape[-1])
    return y


def cmd_evaluate(args) -> int:
    from . import runs
    from .saving import load_model

    model = load_model(runs.model_file(args.model))
    _, (_, (x_test, y_test)) = load_dataset(args.dataset)
    x_test, y_test = runs.prepare(x_test, y_test)
    results = model.evaluate(x_test, _labels_for(model, y_test), batch_size=args.batch_size, verbose=0, return_dict=True)
    ordered = sorted(results.items(), key=lambda kv: kv[0] != "loss")  # the loss first, then the metrics
    print(f"{args.dataset} test set, {len(x_test)} images: " + ", ".join(f"{k} {v:.4f}" for k, v in ordered))
    return 0


def cmd_summary(args) -> int:
    from .runs import model_file
    from .saving import load_model

    load_model(model_file(args.model), compile=False).summary()
    return 0


def cmd_predict(args) -> int:
    from .images import BLANK_INK, ink_pixels, load_digit
    from .runs import model_file
    from .saving import load_model

    model = load_model(model_file(args.model), compile=False)
    digits = backend.xp.stack([load_digit(path) for path in args.images])
    probs = model.predict(digits.astype(backend.floatx())[..., None] / 255.0, verbose=0)
    for path, digit, p in zip(args.images, digits, probs):
        ranked = " ".join(f"{k}:{v:.3f}" for k, v in enumerate(p))
        print(f"{path}: {int(p.argmax())}  (probabilities {ranked})")
        ink = ink_pixels(digit)
        if ink < BLANK_INK:
            print(f"  warning: {path} is {'blank' if ink == 0 else 'nearly blank'} once fitted to MNIST's 28x28 frame "
                  f"({ink} ink pixels; MNIST's digits have about 150): this prediction says little", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from .runs import model_file
    from .saving import load_model

    if not args.onnx and not args.keras:
        raise ValueError("export: say what to write: --onnx OUT and / or --keras OUT")
    model = load_model(model_file(args.model), compile=False)
    if args.onnx:
        model.export_onnx(args.onnx)
        print(f"Wrote {args.onnx}: ONNX, input (batch, {', '.join(map(str, model.input_shape[1:]))}) float32")
    if args.keras:
        model.save_keras(args.keras)
        print(f"Wrote {args.keras}: Keras 3 model file (keras.models.load_model)")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "summary": cmd_summary, "predict": cmd_predict,
            "export": cmd_export}

# Subcommands that live with their tools: each module's register(subparsers) adds its
# parsers and returns {command name: handler(args) -> exit status}.
TOOL_COMMANDS: tuple[str, ...] = ("convscope.viz.cli", "convscope.explorer.cli", "convscope.lessons.cli")

TRAIN_DEFAULTS = vars(build_parser().parse_args(["train"]))

if __name__ == "__main__":
    sys.exit(main())
