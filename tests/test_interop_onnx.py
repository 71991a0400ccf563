"""ONNX export: onnxruntime running the exported graph predicts what convscope predicts (< 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

import convscope
from convscope import backend, layers, zoo
from convscope.datasets import mnist_sample
from convscope.interop import export_onnx

pytestmark = pytest.mark.usefixtures("fresh_state")

onnx = pytest.importorskip("onnx", reason="onnx is the optional [interop] extra that writes ONNX graphs")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime (in the [test] extra) runs the exported graphs")

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def mnist():
    (x_train, y_train), (x_test, _) = mnist_sample.load_data()
    scale = np.float32(1 / 255)
    return x_train[..., None] * scale, y_train, x_test[..., None] * scale


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def nodes(path, op_type):
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == op_type]


def attributes(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_trained_mnist_convnet(tmp_path, mnist):
    x_train, y_train, x_test = mnist
    model = zoo.keras_convnet()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train[:4000], y_train[:4000], batch_size=64, epochs=1, verbose=0)
    model.export_onnx(tmp_path / "mnist.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "mnist.onnx")), full_check=True)
    assert len(x_test) == 1000
    ours, theirs = model.predict(x_test), run_onnx(tmp_path / "mnist.onnx", x_test)
    assert theirs.shape == (1000, 10)
    assert np.abs(theirs - ours).max() < TOLERANCE
    assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).all() and len(np.unique(ours.argmax(axis=1))) == 10
    # NHWC in; NCHW inside; back to NHWC before Flatten, so the Dense kernel rows stay in convscope's order.
    transposes = [attributes(n)["perm"] for n in nodes(tmp_path / "mnist.onnx", "Transpose")]
    assert transposes == [[0, 3, 1, 2], [0, 2, 3, 1]]
    assert len(nodes(tmp_path / "mnist.onnx", "Gemm")) == 1


def every_option_model() -> convscope.Sequential:
    model = convscope.Sequential([
        convscope.Input(shape=(28, 28, 1)),
        layers.Rescaling(2.0, offset=-1.0),
        layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False),  # 28 -> 14, pads (0, 1)
        layers.BatchNormalization(),
        layers.Activation("tanh"),
        layers.Conv2D(16, 3, padding="same", dilation_rate=2, activation="selu"),
        layers.AveragePooling2D(3, strides=2, padding="same"),  # 14 -> 7, pads (0, 1): edge windows average 4 or 6 cells
        layers.Conv2D(16, 3, padding="same", groups=16, activation="gelu"),  # depthwise
        layers.ReLU(max_value=6.0),
        layers.Conv2D(16, (2, 3), padding="same", groups=4, activation="silu"),  # even height: pads (0, 1)
        layers.ReLU(negative_slope=0.1, threshold=0.5, max_value=3.0),
        layers.MaxPooling2D(3, strides=2, padding="same"),  # 7 -> 4, pads (1, 1)
        layers.Dense(12, activation="elu"),  # on a 4-D map: acts on the channel axis
        layers.Conv2D(8, 3, padding="same", activation="softmax"),  # softmax over the channels of an NCHW map
        layers.Activation("softplus"),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(0.3),
        layers.Dense(10, activation="leaky_relu"),
        layers.BatchNormalization(scale=False),
        layers.Dense(10, activation="softsign"),
    ])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_variance.value = rng.uniform(0.5, 2.0, layer.moving_variance.shape).astype("float32")
    return model


def test_every_option(tmp_path, mnist):
    x = mnist[2]
    model = every_option_model()
    export_onnx(model, tmp_path / "every.onnx")
    ours, theirs = model.predict(x), run_onnx(tmp_path / "every.onnx", x)
    assert ours.std(axis=0).min() > 1e-4  # the outputs depend on the input, so the comparison means something
    assert np.abs(theirs - ours).max() < TOLERANCE
    # Every layer's output, not only the last (a deep random network squeezes its outputs together).
    for depth in range(1, len(model.layers)):
        prefix = convscope.Sequential(model.layers[:depth], name=f"first_{depth}")
        prefix.build(model.input_shape)
        export_onnx(prefix, tmp_path / "prefix.onnx")
        ours = prefix.predict(x[:200])
        scale = max(1.0, float(np.abs(ours).max()))
        assert np.abs(run_onnx(tmp_path / "prefix.onnx", x[:200]) - ours).max() < TOLERANCE * scale, prefix.layers[-1]
    path = tmp_path / "every.onnx"
    conv = [attributes(n) for n in nodes(path, "Conv")]
    assert [(c["strides"], c["dilations"], c["group"], c["pads"]) for c in conv] == [
        ([2, 2], [1, 1], 1, [0, 0, 1, 1]), ([1, 1], [2, 2], 1, [2, 2, 2, 2]), ([1, 1], [1, 1], 16, [1, 1, 1, 1]),
        ([1, 1], [1, 1], 4, [0, 1, 1, 1]), ([1, 1], [1, 1], 1, [1, 1, 1, 1])]
    assert attributes(nodes(path, "Conv")[3])["kernel_shape"] == [2, 3]
    (average,) = [attributes(n) for n in nodes(path, "AveragePool")]
    assert average["count_include_pad"] == 0 and average["pads"] == [0, 0, 1, 1]
    assert len(nodes(path, "BatchNormalization")) == 2 and len(nodes(path, "Erf")) == 1


def test_float64_model_exports_in_float32(tmp_path, mnist):
    backend.set_floatx("float64")
    model = convscope.Sequential([
        convscope.Input(shape=(28, 28, 1)), layers.Conv2D(4, 5, strides=3, activation="sigmoid"),
        layers.GlobalMaxPooling2D(), layers.Dense(3, activation="softmax"),
    ])
    model.export_onnx(tmp_path / "f64.onnx")
    x = mnist[2][:100]
    assert np.abs(run_onnx(tmp_path / "f64.onnx", x) - model.predict(x)).max() < TOLERANCE


def test_unbuilt_model_and_atomic_write(tmp_path):
    with pytest.raises(ValueError, match="has not been built"):
        convscope.Sequential([layers.Dense(2)]).export_onnx(tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []
