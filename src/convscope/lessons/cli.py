"""``convscope lesson list`` and ``convscope lesson run NAME|ALL [--model M] [--out DIR] [--fast] [--layer L]
[--seed S]``.

``list`` prints each lesson's name and the learner's question it answers, its title below. ``run``
prints each lesson's explanation (before its experiment starts), then its numbers, checks and
pictures, a verdict line ("PASSED: ..." or "FAILED: ...") and the time it took; ``run ALL`` ends
with a table of every lesson's verdict and time, and the total. The exit status is 0 when every
lesson run passed and 1 when any failed; errors (an unknown lesson, a bad model file) are one
line on stderr with exit status 2, as everywhere in ``convscope``.
"""

from __future__ import annotations

import time

DEFAULT_OUT = "lesson-pictures"


def register(subparsers) -> dict:
    """Add ``lesson`` to the ``convscope`` command line; returns ``{"lesson": handler}``."""
    lesson = subparsers.add_parser(
        "lesson", allow_abbrev=False, help="lessons: claims about conv layers as experiments that check themselves",
        description="Each lesson explains one claim about convolutional layers, tests it on real digits (your "
                    "model with --model, else a small model trained on the spot), writes pictures and ends with a "
                    "verdict. Exit status 1 when a lesson's claim does not hold.")
    action = lesson.add_subparsers(dest="lesson_action", metavar="ACTION", parser_class=type(lesson))
    action.required = True
    action.add_parser("list", allow_abbrev=False, help="the lessons and the question each one answers")
    run = action.add_parser("run", allow_abbrev=False, help="run one lesson, or ALL of them")
    run.add_argument("name", metavar="NAME", help="a lesson from `convscope lesson list`, or ALL")
    run.add_argument("--model", help="your trained model: a .convscope, .keras or .h5 file (Sequential or graph; "
                                     "digits are resized and coloured to fit its input) or a run folder "
                                     "(default: the Keras MNIST convnet, trained for one epoch on the spot)")
    run.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the pictures (default: {DEFAULT_OUT})")
    run.add_argument("--fast", action="store_true",
                     help="the offline MNIST sample and small sizes: every lesson in seconds")
    run.add_argument("--layer", help="the Conv2D layer a lesson studies (default: each lesson picks one: backprop the "
                                     "last Conv2D larger than 1x1, the others the first)")
    run.add_argument("--seed", type=int, default=0,
                     help="seed of the lesson's own random draws: the networks it trains from scratch, random weights "
                          "and gradients (default: 0; the default model is always the one trained from seed 0)")
    return {"lesson": handle}


def handle(args) -> int:
    from . import LESSONS, lesson, run
    from .lab import introduce

    if args.lesson_action == "list":
        width = max(map(len, LESSONS))
        for name, module in LESSONS.items():
            print(f"{name.ljust(width)}  {module.QUESTION}\n{' ' * width}  {module.TITLE}")
        return 0
    names = list(LESSONS) if args.name == "ALL" else [lesson(args.name).NAME]
    verdicts, times = {}, {}
    for name in names:
        module = LESSONS[name]
        print("\n".join(introduce(module.NAME, module.TITLE, module.EXPLANATION, module.QUESTION)), flush=True)
        start = time.perf_counter()
        result = run(name, model=args.model, fast=args.fast, out=args.out, layer=args.layer, seed=args.seed)
        times[name], verdicts[name] = time.perf_counter() - start, result.verdict
        print(result.report(introduction=False), flush=True)
        print(f"time: {times[name]:.1f} s\n", flush=True)
    failed = [name for name in names if not verdicts[name]]
    if len(names) > 1:
        width = max(map(len, names))
        print(f"{'lesson'.ljust(width)}  verdict    time")
        for name in names:
            print(f"{name.ljust(width)}  {'PASSED' if verdicts[name] else 'FAILED'}  {times[name]:6.1f} s")
        print(f"{'total'.ljust(width)}          {sum(times.values()):6.1f} s")
        if args.model is None:
            print("(the first lesson that studies the default model also trains it, once: its time includes that)")
        print(f"{len(names) - len(failed)} of {len(names)} lessons passed"
              + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
