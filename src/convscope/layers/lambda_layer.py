"""``Lambda``: a layer made of one Python function of its input, written with ``convscope.ops``.

    layers.Lambda(lambda x: ops.square(x) * 0.5)

It is a layer defined by ``call`` (see ``layers.base``): the function runs on symbolic
inputs once per mode and shape, and its ops calls are differentiated like any layer. Its
function is code, so a model holding a ``Lambda`` cannot be written to a model file (Keras
stores Python bytecode there, which convscope never loads); save the weights instead.
"""

from __future__ import annotations

from .base import Layer


class Lambda(Layer):
    """``Lambda(function, output_shape=None, mask=None, arguments=None)``: ``function(x, **arguments)``."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f'Lambda "{self.name}": argument "function" must be callable, received {function!r}')
        if mask is not None:
            raise ValueError(f'Lambda "{self.name}": masks are not supported (argument "mask")')
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f'Lambda "{self.name}": argument "arguments" must be a dict, received {arguments!r}')
        self.function, self.arguments = function, dict(arguments or {})

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def get_config(self) -> dict:
        raise TypeError(
            f'Lambda "{self.name}" holds Python code, which a model file cannot hold (convscope never loads code '
            "from files); save the weights (model.save_weights) and rebuild the model from its code"
        )
