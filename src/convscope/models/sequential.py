"""Sequential: a chain of layers, the simplest graph.

``Sequential([Input(shape), layer1, layer2, ...])`` is the functional graph
``x -> layer1 -> layer2 -> ...`` and runs on the same engine as any ``Model``. Without an
``Input`` the chain is built on the first data it sees (or ``build(input_shape)``).
``add`` and ``pop`` rebuild the chain; a layer that is already built (taken from
another model, say) keeps its weights and must accept the shape it receives.
"""

from __future__ import annotations

from ..layers import InputLayer, Layer, deserialize, serialize
from ..layers.node import KerasTensor
from .model import Model, refuse_layers_shared_across_models


class Sequential(Model):
    def __init__(self, layers=None, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self._chain: list[Layer] = []
        self._names: set[str] = set()  # the chain's layer names, so that each add checks uniqueness at once
        self._input_layer: InputLayer | None = None
        # The chain is built once, after every layer is in: rebuilding it on each add would be quadratic.
        for layer in layers or []:
            self._append(layer)
        if self._input_layer is not None:
            self._rebuild()

    @property
    def layers(self) -> list:
        """The layers in order, without the input (as Keras's ``Sequential.layers``)."""
        return list(self._chain)

    @property
    def operations(self) -> list:
        """The same as ``layers``: a chain holds no ops calls of its own."""
        return list(self._chain)

    def add(self, layer) -> None:
        self._append(layer)
        if self._input_layer is None:
            return
        try:
            self._rebuild()
        except Exception:
            if self._chain and self._chain[-1] is layer:
                self._names.discard(self._chain.pop().name)
            self._rebuild()
            raise

    def _append(self, layer) -> None:
        """Put ``layer`` (or an Input, which must come first) at the end of the chain, without rebuilding it."""
        if isinstance(layer, KerasTensor) and isinstance(layer.node.layer, InputLayer) and layer.node.is_input:
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._chain or self._input_layer is not None:
                raise ValueError(f'Sequential "{self.name}": an Input can only be the first element')
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f'Sequential "{self.name}": expected a convscope layer, received {type(layer).__name__}')
        if layer.name in self._names:
            raise ValueError(f'Sequential "{self.name}": layer names must be unique, "{layer.name}" appears twice')
        if not self._chain and self._input_layer is None and layer.declared_input_shape is not None:
            self._input_layer = InputLayer(shape=layer.declared_input_shape)  # Dense(64, input_shape=(784,))
        self._chain.append(layer)
        self._names.add(layer.name)

    def pop(self) -> Layer:
        """Remove and return the last layer (Keras's ``Sequential.pop``)."""
        if not self._chain:
            raise ValueError(f'Sequential "{self.name}" has no layers to pop')
        layer = self._chain.pop()
        self._names.discard(layer.name)
        self._rebuild()
        return layer

    def build(self, input_shape=None) -> None:
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError(f'Sequential "{self.name}": build() needs an input shape, e.g. build((None, 28, 28, 1))')
            return
        shape = tuple(input_shape)[1:]
        if self._input_layer is not None and self._input_layer.shape == shape:
            return
        previous, self._input_layer = self._input_layer, InputLayer(shape=shape)
        try:
            self._rebuild()
        except Exception:
            self._input_layer = previous  # a shape the layers refuse leaves the model as it was
            self._rebuild()
            raise

    def _rebuild(self) -> None:
        """The chain as a graph from the input layer; the previous graph's calls are removed from its layers."""
        if self._graph is not None:
            for node in self._graph.nodes:
                node.layer._inbound_nodes.remove(node)
            self._graph = None
        if self._input_layer is None:
            self.built = False
            return
        x = self._input_layer.output
        inputs = x
        made = []
        try:
            for layer in self._chain:
                x = layer(x)
                made.append(x.node)
        except Exception:
            for node in made:
                node.layer._inbound_nodes.remove(node)
            raise
        self._set_graph(inputs, x)

    def _graph_for(self, training: bool, shapes=None):
        if self._graph is None:
            if shapes is None:
                raise ValueError(f'Sequential "{self.name}" has not been built: give it an Input or call it on data first')
            self.build(shapes[0])
        return self._graph

    def get_config(self) -> dict:
        refuse_layers_shared_across_models(self)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": None if self._input_layer is None else list(self._input_layer.shape),
            "layers": [serialize(layer) for layer in self._chain],
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Sequential":
        trainable = config.get("trainable", True)
        if not isinstance(trainable, bool):
            raise TypeError(f'the Sequential config\'s "trainable" must be a bool, received {trainable!r}')
        model = cls([deserialize(spec, custom_objects) for spec in config["layers"]], name=config.get("name"),
                    trainable=trainable)
        if config.get("input_shape") is not None:
            model.build((None, *config["input_shape"]))
        return model
