"""Print the max difference of every save / load round trip (issue 12's "Must show" 2).

    python scripts/check_round_trips.py

For a Sequential, a functional (branches, a merge) and a nested model, each trained two
epochs: save -> load_model for .keras, .h5 and .convscope, and save_weights -> load_weights
into a freshly built model; then the largest |difference| of the predictions on 64 inputs,
whether evaluate() gives the same loss at once (the compile configuration came back) and
whether the optimizer's step count came back (only .convscope carries its state).
"""

import pathlib
import tempfile

import numpy as np

import convscope
from convscope import layers


def sequential():
    return convscope.Sequential([convscope.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                                 layers.BatchNormalization(), layers.MaxPooling2D(2), layers.Flatten(),
                                 layers.Dense(3, activation="softmax")])


def functional():
    x = convscope.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    b = layers.BatchNormalization()(layers.Conv2D(4, 1)(x))
    y = layers.GlobalAveragePooling2D()(layers.Concatenate()([layers.Add()([a, b]), x]))
    return convscope.Model(x, layers.Dense(3, activation="softmax")(y))


def nested():
    block = convscope.Sequential([convscope.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu")], name="block")
    x = convscope.Input((8, 8, 3))
    return convscope.Model(x, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(block(x))))


def main() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (64, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 64)
    print(f"{'model':<11} {'file':<12} {'max |diff|':>10} {'same loss':>9} {'optimizer steps':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for make in (sequential, functional, nested):
            model = make()
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(x, y, batch_size=16, epochs=2, verbose=0)
            expected, loss = model.predict(x, verbose=0), model.evaluate(x, y, verbose=0)[0]
            for suffix in (".keras", ".h5", ".convscope", ".weights.h5"):
                path = pathlib.Path(tmp) / f"{make.__name__}{suffix}"
                if suffix == ".weights.h5":
                    model.save_weights(path)
                    loaded = make()
                    loaded.load_weights(path)
                    same, steps = "-", "-"
                else:
                    model.save(path)
                    loaded = convscope.load_model(path)
                    same = "yes" if loaded.evaluate(x, y, verbose=0)[0] == loss else "NO"
                    steps = f"{loaded.optimizer.iterations}/{model.optimizer.iterations}"
                diff = float(np.abs(loaded.predict(x, verbose=0) - expected).max())
                print(f"{make.__name__:<11} {suffix:<12} {diff:>10.3g} {same:>9} {steps:>15}")


if __name__ == "__main__":
    main()
