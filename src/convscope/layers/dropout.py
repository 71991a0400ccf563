"""Dropout: during training, zero each element with probability ``rate`` and scale the rest by 1/(1-rate).

Shape unchanged. Inverted dropout, as Keras: the expected value of every element
is the same in training and inference, so inference is the identity.
Backward: dy times the same mask (and scale) the forward pass drew.
"""

from __future__ import annotations

from .. import backend
from .base import Layer, finite_number


class Dropout(Layer):
    LOOP_REFERENCE = "none: the identity at inference; in training a product with a random mask (tests hold it to its mask)"

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not finite_number(rate) or not 0 <= rate < 1:
            raise ValueError(f'Dropout "{self.name}": argument "rate" must be a number in [0, 1), received {rate!r}')
        if noise_shape is not None and (
            not isinstance(noise_shape, (tuple, list)) or not all(d is None or isinstance(d, int) for d in noise_shape)
        ):
            raise TypeError(f'Dropout "{self.name}": argument "noise_shape" must be None or a tuple of ints, received {noise_shape!r}')
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f'Dropout "{self.name}": argument "seed" must be None or an int, received {seed!r}')
        self.rate, self.seed = float(rate), seed
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self._rng = None if seed is None else backend.rng_for(seed)
        self._mask = None

    def forward(self, x, training: bool = False):
        if not training or self.rate == 0:
            self._mask = None
            return x
        shape = x.shape if self.noise_shape is None else tuple(
            x.shape[i] if d is None else d for i, d in enumerate(self.noise_shape)
        )
        rng = self._rng or backend.global_rng()
        keep = rng.random(shape, dtype=x.dtype) >= self.rate
        self._mask = keep * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * self._mask

    def backward(self, dy, need_dx: bool = True):
        return dy if self._mask is None else dy * self._mask

    def get_config(self) -> dict:
        noise = None if self.noise_shape is None else list(self.noise_shape)
        return {**super().get_config(), "rate": self.rate, "noise_shape": noise, "seed": self.seed}
