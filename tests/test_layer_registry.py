"""Every registered layer has what the project promises: a loop reference, a gradient test, a Keras and an ONNX mapping.

The registry is ``convscope.layers.LAYER_CLASSES`` (the closed list a model file may
name). For each class: ``LOOP_REFERENCE`` names a function of ``convscope.arraymath`` (or says
"none: <why>"), a central-difference gradient test constructs it (tests/test_gradients*.py),
``interop.keras_config.KERAS_MAPPINGS`` and ``interop.onnx_export.ONNX_EMITTERS`` hold it,
or their ``NOT_SUPPORTED`` tables give the reason. Adding a layer without any of these fails here.
"""

import importlib
import pathlib
import re

import pytest

from convscope.interop import keras_config, onnx_export
from convscope.layers import LAYER_CLASSES

TESTS = pathlib.Path(__file__).parent
GRADIENT_SOURCES = "\n".join(p.read_text() for p in sorted(TESTS.glob("test_gradients*.py")))
NO_GRADIENT = {
    "InputLayer": "it computes nothing: the identity, with no parameters",
}


@pytest.mark.parametrize("name", sorted(LAYER_CLASSES))
def test_loop_reference(name):
    reference = LAYER_CLASSES[name].__dict__.get("LOOP_REFERENCE")
    assert isinstance(reference, str), f"{name} declares no LOOP_REFERENCE of its own"
    if reference.startswith("none: "):
        assert len(reference) > len("none: ") + 10, f"{name}: say why it has no loop reference"
        return
    module, _, function = reference.rpartition(".")
    assert module.startswith("convscope.arraymath."), f"{name}: the loop reference must live in convscope.arraymath"
    assert callable(getattr(importlib.import_module(module), function)), f"{name}: {reference} is not a function"
    assert re.search(rf"\b{function}\b", "\n".join(p.read_text() for p in TESTS.glob("test_*.py")
                                                   if p.name != "test_layer_registry.py")), \
        f"{name}: no test calls its loop reference {function}"


@pytest.mark.parametrize("name", sorted(LAYER_CLASSES))
def test_gradient_test(name):
    if name in NO_GRADIENT:
        return
    assert re.search(rf"\b{name}\(", GRADIENT_SOURCES), f"no tests/test_gradients*.py test constructs {name}"


@pytest.mark.parametrize("name", sorted(LAYER_CLASSES))
def test_keras_mapping(name):
    cls = LAYER_CLASSES[name]
    assert cls in keras_config.KERAS_MAPPINGS or cls in keras_config.NOT_SUPPORTED, f"{name} has no Keras mapping"


@pytest.mark.parametrize("name", sorted(LAYER_CLASSES))
def test_onnx_mapping(name):
    cls = LAYER_CLASSES[name]
    assert cls in onnx_export.ONNX_EMITTERS or cls in onnx_export.NOT_SUPPORTED, f"{name} has no ONNX mapping"


def test_the_registry_is_the_closed_list_of_layer_classes():
    import convscope.layers as layers_module

    code_layers = (layers_module.Lambda,)  # Python code: never in a file, so never in the registry
    exported = {n for n in layers_module.__all__ if isinstance(getattr(layers_module, n), type)
                and issubclass(getattr(layers_module, n), layers_module.Layer)
                and getattr(layers_module, n) not in (layers_module.Layer, layers_module.ActivatedLayer, *code_layers)}
    assert {getattr(layers_module, n).__name__ for n in exported} == set(LAYER_CLASSES)
