"""``convscope.random``: Keras's ``keras.random`` (random tensors, dropout, shuffling), seeded as Keras seeds them.

``seed`` may be None (the global generator, which ``utils.set_random_seed`` seeds), an int
(the same numbers at every call, as Keras's stateless seeds) or a ``SeedGenerator`` (a
stream of its own that advances at every call, which is how a layer keeps its randomness
reproducible). On concrete shapes these return arrays. In a traced ``call`` (a shape
holding ``ops.shape(x)[0]``, or ``dropout`` of a KerasTensor) they record graph nodes
that draw new numbers at every run; ``dropout``'s gradient is its kept-and-scaled mask.

    noise = random.normal(shape=(ops.shape(z_mean)[0], latent_dim))   # a VAE's sampling
    x = random.dropout(x, 0.5, seed=self.seed_generator)                # always active, as in Keras
"""

from __future__ import annotations

from . import backend
from .arraymath.functions import rng_of
from .layers.node import KerasTensor
from .layers.operation import Dim, apply, shape_template


class SeedGenerator:
    """A random stream of its own: ``SeedGenerator(1337)`` gives the same draws in every run."""

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"SeedGenerator: argument \"seed\" must be an int or None, received {seed!r}")
        self.seed, self.name = seed, name
        # Without a seed, a stream of its own started from the global generator (so set_random_seed fixes it).
        start = backend.global_rng().integers(2**63) if seed is None else seed
        self.generator = backend.xp.random.default_rng(start)


def _generator(seed, owner: str):
    """What a random op keeps: a SeedGenerator's stream, or None / an int, resolved each time it runs (see
    ``arraymath.functions.rng_of``), so reseeding the global generator reaches ops traced before."""
    if isinstance(seed, SeedGenerator):
        return seed.generator
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f'{owner}: argument "seed" must be None, an int or a SeedGenerator, received {seed!r}')
    return seed


def _draw(function: str, shape, seed, **attrs):
    template, refs = shape_template(shape)
    generator = _generator(seed, f"convscope.random.{function.split('_')[1]}")
    result = apply(function, *refs, shape=template, generator=generator, **attrs)
    return result


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of N(mean, stddev**2) of ``shape``."""
    return _draw("random_normal", shape, seed, mean=mean, stddev=stddev, dtype=dtype or backend.floatx())


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples of U[minval, maxval) of ``shape``."""
    return _draw("random_uniform", shape, seed, minval=minval, maxval=maxval, dtype=dtype or backend.floatx())


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers in [minval, maxval) of ``shape`` (concrete shapes only: integers have no gradient to follow)."""
    if any(isinstance(d, Dim) for d in shape):
        raise TypeError("convscope.random.randint: give a concrete shape")
    generator = rng_of(_generator(seed, "convscope.random.randint"))
    return generator.integers(minval, maxval, tuple(shape)).astype(dtype)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Each element kept with probability 1 - rate and scaled by 1 / (1 - rate) (always: Keras's function has
    no training flag; the Dropout layer has). ``noise_shape`` is not supported."""
    if noise_shape is not None:
        raise ValueError("convscope.random.dropout: noise_shape is not supported")
    if not 0 <= rate < 1:
        raise ValueError(f'convscope.random.dropout: argument "rate" must be in [0, 1), received {rate!r}')
    return apply("dropout", inputs, rate=float(rate), generator=_generator(seed, "convscope.random.dropout"))


def shuffle(x, axis=0, seed=None):
    """``x`` with its entries along ``axis`` in a random order (arrays only)."""
    if isinstance(x, KerasTensor):
        raise TypeError("convscope.random.shuffle works on arrays, not inside a model's call()")
    x = backend.xp.asarray(x)
    generator = rng_of(_generator(seed, "convscope.random.shuffle"))
    return backend.xp.take(x, generator.permutation(x.shape[axis]), axis=axis)


__all__ = ["SeedGenerator", "dropout", "normal", "randint", "shuffle", "uniform"]
