"""Lessons: every claim about convolutional layers as an experiment that checks itself.

Each lesson is one module: an explanation, an experiment on real digits (on the
user's trained model where one is given, else on a small model trained here), and
checks with explicit tolerances; its verdict is True when every check holds.

    from convscope import lessons
    lessons.names()                                   # ['filters', 'initialization', ...]
    lessons.lesson("bias").QUESTION                   # the learner's question the lesson answers
    result = lessons.run("backprop", model="runs/mnist-full/model.convscope", fast=True, out="pictures")
    print(result.report())
    result.verdict, result.numbers, result.checks, result.pictures

``fast=True`` uses the offline sample and small sizes: every lesson in seconds. ``seed`` starts the
generator the lesson draws its own random numbers from (the networks it trains from scratch, random
weights and gradients): another seed, another draw, and the verdict must hold for each.
The command line is ``convscope lesson list`` and ``convscope lesson run NAME|ALL``.
"""

from __future__ import annotations

from .. import backend
from . import (
    activation,
    backprop,
    bias,
    channels,
    correlation,
    filters,
    initialization,
    pointwise,
    pooling,
)
from .lab import Check, Lab, LessonResult

LESSONS = {module.NAME: module for module in (
    filters, initialization, backprop, activation, bias, channels, pooling, pointwise, correlation,
)}


def names() -> list[str]:
    return list(LESSONS)


def lesson(name: str):
    """The module of lesson ``name`` (its NAME, TITLE, QUESTION, EXPLANATION and ``experiment(lab)``)."""
    if name not in LESSONS:
        raise ValueError(f"no lesson named {name!r}; the lessons are: {', '.join(LESSONS)}")
    return LESSONS[name]


def run(name: str, model=None, fast: bool = False, out=None, layer=None, seed: int = 0) -> LessonResult:
    """Run lesson ``name`` and return its result (``.verdict``, ``.numbers``, ``.checks``, ``.pictures``).

    ``model``: a trained model (Sequential or graph), a ``.convscope`` / ``.keras`` / ``.h5`` file or a run
    folder, its input fed with digits resized and coloured to fit (default: a small model
    trained here, always from seed 0); ``fast``: offline sample, small sizes; ``out``: folder for the
    PNG pictures (None: none drawn); ``layer``: the Conv2D layer to study (default: each lesson picks
    one); ``seed``: the global generator restarts from it when the experiment begins.
    The caller's float type and random-generator state are restored afterwards.
    """
    module = lesson(name)
    result = LessonResult(module.NAME, module.TITLE, module.EXPLANATION, module.QUESTION)
    lab = Lab(result, model=model, fast=fast, out=out, layer=layer)
    floatx, rng_state = backend.floatx(), backend.get_rng_state()
    try:
        backend.set_seed(seed)
        module.experiment(lab)
    finally:
        backend.set_floatx(floatx)
        backend.set_rng_state(rng_state)
    return result


def run_all(model=None, fast: bool = False, out=None, layer=None, seed: int = 0) -> list[LessonResult]:
    return [run(name, model=model, fast=fast, out=out, layer=layer, seed=seed) for name in LESSONS]


__all__ = ["Check", "LESSONS", "Lab", "LessonResult", "lesson", "names", "run", "run_all"]
