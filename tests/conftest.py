"""Shared fixtures."""

import pytest


@pytest.fixture(params=["numpy", "jit"])
def kernel_path(request):
    """Run a test once with the NumPy ops and once with the compiled (Numba) kernels."""
    from convscope.arraymath import jit

    if request.param == "jit" and jit.numba is None:
        pytest.skip("Numba is not installed (the optional [fast] extra), so there is no compiled path to test")
    previous = jit.enabled()
    jit.set_enabled(request.param == "jit")
    yield request.param
    jit.set_enabled(previous)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run folder: the Keras convnet trained 2 epochs on 320 sample images (a second or two)."""
    from convscope import runs
    from convscope.datasets import mnist_sample

    folder = tmp_path_factory.mktemp("run") / "run"
    cfg = runs.RunConfig(dataset="mnist-sample", epochs=2, batch_size=64, limit=320)
    model = runs.start(cfg, folder)
    (x, y), _ = mnist_sample.load_data()
    x, y = runs.prepare(x[:320], y[:320])
    model.fit(x, y, batch_size=64, epochs=2, validation_split=0.1, callbacks=[runs.RunRecorder(folder)], verbose=0)
    model.save(folder / runs.FINAL_MODEL)
    return folder


@pytest.fixture
def float64():
    """Build and compute in float64 inside the test (gradient checks need it); the previous floatx after."""
    from convscope import backend

    previous = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(previous)


@pytest.fixture
def fresh_state():
    """Automatic layer names from zero and seed 0 inside the test; the caller's floatx and generator after."""
    from convscope import backend, layers, utils

    layers.clear_session()
    floatx, state = backend.floatx(), backend.get_rng_state()
    utils.set_random_seed(0)
    yield
    backend.set_floatx(floatx)
    backend.set_rng_state(state)


def graph_tour_model(seed: int = 3):
    """A small digit model whose graph holds every layer the explorer explains beyond a chain: a strided conv,
    a dilated grouped conv and a depthwise branch joined by Add, max pooling, a transposed conv concatenated
    with the Add's output, average pooling, a nested Sequential block (conv, ReLU), Dense softmax (14 calls with
    the nested model's own, 28x28x1 in, 10 out)."""
    import convscope
    from convscope import layers, utils

    utils.set_random_seed(seed)
    inputs = convscope.Input(shape=(28, 28, 1))
    a = layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh", bias_initializer="random_normal",
                      name="strided")(inputs)
    b = layers.Conv2D(4, 3, dilation_rate=2, padding="same", groups=2, activation="relu",
                      bias_initializer="random_normal", name="dilated")(a)
    c = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(a)
    d = layers.Conv2D(4, 1, name="proj")(c)
    s = layers.Add(name="add")([b, d])
    m = layers.MaxPooling2D(2, name="maxp")(s)
    t = layers.Conv2DTranspose(3, 3, strides=2, padding="same", name="tconv")(m)
    joined = layers.Concatenate(name="cat")([t, s])
    p = layers.AveragePooling2D(3, strides=2, padding="same", name="avg")(joined)
    block = convscope.Sequential([convscope.Input(shape=(7, 7, 7)), layers.Conv2D(7, 3, padding="same", name="inner_conv"),
                                  layers.ReLU(name="inner_relu")], name="block")
    outputs = layers.Dense(10, activation="softmax", name="out")(layers.Flatten(name="flat")(block(p)))
    return convscope.Model(inputs, outputs, name="graph_tour")
